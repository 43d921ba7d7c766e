"""Admin: the outbox changelist shows undrained rows and the oldest age; the {% outbox_status %} tag."""

from datetime import timedelta

import pytest
from django.template import Context, Template
from django.utils import timezone

from publishing.models import PublishKind, PublishOutbox

pytestmark = pytest.mark.django_db


def test_outbox_changelist_shows_count_and_oldest_age(admin_client):
    five_minutes_ago = timezone.now() - timedelta(minutes=5)
    PublishOutbox.objects.create(kind=PublishKind.STUDY_TOPIC, source_id=1, created_at=five_minutes_ago)
    PublishOutbox.objects.create(kind=PublishKind.STUDY_TOPIC, source_id=2)
    response = admin_client.get("/admin/publishing/publishoutbox/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<td class="outbox-count">2</td>' in html
    age = int(html.split('<td class="outbox-oldest">')[1].split(" s<")[0])
    assert 299 <= age < 400


def test_outbox_status_tag_when_empty():
    html = Template("{% load publishing_admin %}{% outbox_status %}").render(Context({}))
    assert '<td class="outbox-count">0</td>' in html and '<td class="outbox-oldest">—</td>' in html


def test_published_admin_is_read_only(admin_client):
    assert admin_client.get("/admin/publishing/published/").status_code == 200
    assert admin_client.get("/admin/publishing/published/add/").status_code == 403
