"""Staff who are not superusers cannot raise anyone's rights in the admin: their own superuser status, groups and
permissions are not theirs to change, a superuser or another staff member is not theirs to change or delete, and a
group gets no permission from them that they do not hold (study/admin/users.py). A superuser still does all of it."""

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from study.admin.users import RIGHTS
from study.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def staff(*codenames: str):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def user_form(user, **changes) -> dict:
    """What the change form posts for `user` unchanged, with `changes`."""
    data = {"username": user.username, "first_name": "", "last_name": "", "email": user.email or "",
            "is_active": "on", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01", "initial-date_joined_1": "00:00:00"}
    if user.is_staff:
        data["is_staff"] = "on"
    data.update(changes)
    return data


def test_change_user_cannot_make_anyone_superuser_or_grant_rights(client):
    editor = staff("change_user", "view_user")
    learner = UserFactory()
    powerful = Permission.objects.get(codename="delete_user")
    group = Group.objects.create(name="everything")
    client.force_login(editor)
    for target in (editor, learner):
        response = client.post(reverse("admin:auth_user_change", args=[target.pk]), user_form(
            target, is_staff="on", is_superuser="on", groups=[group.pk], user_permissions=[powerful.pk],
            first_name="Renamed"))
        assert response.status_code == 302, response.content.decode()[:2000]
        target.refresh_from_db()
        assert target.first_name == "Renamed"  # the rest of the form is saved as before
        assert not target.is_superuser
        assert not target.groups.exists() and not target.user_permissions.filter(pk=powerful.pk).exists()
    learner.refresh_from_db()
    assert not learner.is_staff  # staff status is admin sign-in: a learner made staff could no longer be changed
    editor.refresh_from_db()
    assert editor.is_staff  # (nor do they drop their own by saving a form that does not show it)
    page = client.get(reverse("admin:auth_user_change", args=[learner.pk])).content.decode()
    for field in RIGHTS:
        assert f'name="{field}"' not in page, field


@pytest.mark.parametrize("target", ["superuser", "other staff"])
def test_a_superuser_or_colleague_is_not_changed_or_deleted_by_other_staff(client, target):
    """With a colleague's password set, staff could sign in as that colleague and hold their permissions."""
    editor = staff("change_user", "view_user", "delete_user")
    boss = UserFactory(is_staff=True, is_superuser=target == "superuser")
    password = boss.password
    client.force_login(editor)
    change = reverse("admin:auth_user_change", args=[boss.pk])
    assert client.post(change, user_form(boss, is_superuser="on", first_name="Owned")).status_code == 403
    assert client.get(change).status_code == 200  # still viewable
    response = client.post(reverse("admin:auth_user_password_change", args=[boss.pk]),
                           {"password1": "a-new-pw-for-boss-9", "password2": "a-new-pw-for-boss-9",
                            "usable_password": "true"})
    assert response.status_code == 403
    assert client.post(reverse("admin:auth_user_delete", args=[boss.pk]), {"post": "yes"}).status_code == 403
    # nor through the bulk action: its confirmation names the user it may not delete, and its "Yes" is refused (it
    # had skipped the boss in silence, said "Successfully deleted 2 users" and logged the boss as deleted)
    learner = UserFactory()
    picked = {"action": "delete_selected", "_selected_action": [boss.pk, learner.pk]}
    confirmation = client.post(reverse("admin:auth_user_changelist"), picked)
    assert confirmation.status_code == 200
    assert confirmation.context["perms_lacking"] == {f"user “{boss.username}”"}
    assert client.post(reverse("admin:auth_user_changelist"), {**picked, "post": "yes"}).status_code == 403
    boss.refresh_from_db()
    assert boss.first_name != "Owned" and boss.password == password
    assert type(learner).objects.filter(pk=learner.pk).exists()  # all or nothing, as Django's own
    assert not LogEntry.objects.filter(action_flag=DELETION).exists()
    # the learner alone, it may delete
    client.post(reverse("admin:auth_user_changelist"),
                {"action": "delete_selected", "_selected_action": [learner.pk], "post": "yes"})
    assert not type(learner).objects.filter(pk=learner.pk).exists()


def test_a_superuser_still_grants_everything(admin_client):
    learner = UserFactory()
    group = Group.objects.create(name="reviewers")
    response = admin_client.post(reverse("admin:auth_user_change", args=[learner.pk]), user_form(
        learner, is_staff="on", is_superuser="on", groups=[group.pk]))
    assert response.status_code == 302
    learner.refresh_from_db()
    assert learner.is_superuser and list(learner.groups.all()) == [group]


def test_a_group_editor_grants_only_permissions_they_hold(client):
    editor = staff("change_group", "view_group", "view_memocard")
    group = Group.objects.create(name="reviewers")
    view_card, change_user = (Permission.objects.get(codename=c) for c in ("view_memocard", "change_user"))
    group.permissions.add(Permission.objects.get(codename="delete_memocard"))  # held before, kept on save
    client.force_login(editor)
    url = reverse("admin:auth_group_change", args=[group.pk])
    kept = list(group.permissions.values_list("pk", flat=True))

    response = client.post(url, {"name": "reviewers", "permissions": [*kept, change_user.pk]})
    assert response.status_code == 200
    assert "auth.change_user" in str(response.context["adminform"].form.errors["permissions"])
    assert not group.permissions.filter(pk=change_user.pk).exists()

    assert client.post(url, {"name": "reviewers", "permissions": [*kept, view_card.pk]}).status_code == 302
    assert set(group.permissions.values_list("codename", flat=True)) == {"delete_memocard", "view_memocard"}


def test_a_lists_owner_filter_names_only_owners_of_its_rows(client):
    """Staff who may view cards read every username of the site, the superusers' included, in the "user" filter."""
    from study.tests.factories import MemoCardFactory

    viewer = staff("view_memocard")
    cards = MemoCardFactory.create_batch(2)  # (a filter of one choice is not shown)
    boss = UserFactory(is_staff=True, is_superuser=True, username="boss-without-cards")
    client.force_login(viewer)
    page = client.get(reverse("admin:study_memocard_changelist")).content.decode()
    assert all(f"user__id__exact={card.user_id}" in page for card in cards)
    assert boss.username not in page and f"user__id__exact={boss.pk}" not in page


def test_no_list_filters_by_every_user_or_topic_of_the_site():
    from django.contrib import admin
    from django.contrib.auth import get_user_model

    from study.models import StudyTopic

    checked = 0
    for model, model_admin in admin.site._registry.items():
        for entry in model_admin.list_filter:
            name = entry[0] if isinstance(entry, tuple) else entry
            if not isinstance(name, str):
                continue
            field = model._meta.get_field(name)
            if field.is_relation and field.related_model in {get_user_model(), StudyTopic}:
                assert isinstance(entry, tuple) and entry[1] is admin.RelatedOnlyFieldListFilter, (model, name)
                checked += 1
    assert checked >= 9
