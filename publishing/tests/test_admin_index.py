"""The admin index shows the pending-card count and the outbox figures."""

import datetime

import pytest
from django.utils import timezone

from publishing.models import PublishOutbox
from study.tests.factories import MemoCardFactory, UserFactory


@pytest.mark.django_db
def test_admin_index_shows_pending_cards_and_outbox_backlog(client, settings):
    settings.STUDY_PUBLISH_ENABLED = True
    staff = UserFactory(is_staff=True, is_superuser=True)
    MemoCardFactory.create_batch(3, needs_review=True)
    MemoCardFactory(needs_review=False)
    PublishOutbox.objects.create(kind="study_card", source_id=1,
                                 created_at=timezone.now() - datetime.timedelta(seconds=90))
    PublishOutbox.objects.create(kind="study_card", source_id=2)
    client.force_login(staff)

    html = client.get("/admin/").content.decode()

    assert '<strong class="card-review-count">3</strong>' in html
    assert '<td class="outbox-count">2</td>' in html
    oldest = html.split('<td class="outbox-oldest">')[1].split(" s<")[0]
    assert 90 <= int(oldest) < 120


@pytest.mark.django_db
def test_staff_without_the_permissions_do_not_see_the_figures(client):
    MemoCardFactory.create_batch(2, needs_review=True)
    PublishOutbox.objects.create(kind="study_card", source_id=1)
    client.force_login(UserFactory(is_staff=True))  # staff, no model permissions
    html = client.get("/admin/").content.decode()
    assert "card-review-count" not in html and "outbox-count" not in html
