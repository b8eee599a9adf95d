"""No page errors for any role: every demo employee opens every screen (allowed ones answer 200, the rest 403/404)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from voronka.identity.models import User

pytestmark = pytest.mark.django_db

PAGES = ["/", "/tasks/", "/search/?q=фильтр", "/search/?q=8 916", "/account/", "/settings/tokens/", "/settings/integrations/bitrix24/",
         "/settings/roles/", "/settings/view-as/", "/settings/audit/", "/settings/recycle-bin/", "/settings/pipelines/",
         "/settings/fields/", "/settings/users/", "/settings/robots/", "/settings/automation-log/",
         "/settings/automation-log/?status=failed", "/notifications/", "/notifications/?show=unread", "/imports/",
         "/settings/intake/log/", "/settings/intake/log/?status=rejected&channel=mail", "/settings/intake/mailboxes/",
         "/settings/intake/mailboxes/new/", "/free/",
         "/settings/intake/forms/", "/settings/intake/forms/new/", "/settings/intake/queues/",
         "/settings/intake/queues/new/", "/settings/intake/sources/", "/settings/intake/sources/new/",
         "/settings/intake/telegram/new/", "/settings/calendar/",
         "/reports/", "/reports/dashboard/", "/reports/my/", "/reports/plans/",
         *[f"/reports/{slug}/" for slug in ("new-leads", "lead-conversion", "lead-speed", "deals", "funnel", "deal-amount",
                                           "lost-reasons", "time-to-close", "stage-time", "managers", "support",
                                           "end-to-end", "plan-fact", "portrait")]]
KINDS = ["leads", "deals", "contacts", "companies"]


@pytest.fixture
def demo(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    call_command("demo", leads=60, deals=20, no_progress=True, stdout=open("/dev/null", "w"))


def test_no_page_errors_for_any_role(client, demo):
    from voronka.core.actor import Actor
    from voronka.core.selectors import records_visible_to
    from voronka.pipelines.models import Pipeline

    pipelines = list(Pipeline.objects.values_list("id", flat=True))
    for user in User.objects.filter(is_active=True).order_by("username"):
        client.force_login(user)
        actor = Actor.for_user(user, "test")
        urls = list(PAGES)
        for kind, type_id in zip(KINDS, (1, 2, 3, 4), strict=True):
            urls += [f"/crm/{kind}/", f"/crm/{kind}/?all=1&order=-created_at", f"/crm/{kind}/new/",
                     f"/crm/{kind}/duplicates/"]
            if type_id in (1, 2):
                urls += [f"/crm/{kind}/board/"] + [f"/crm/{kind}/board/?pipeline={p}" for p in pipelines]
                urls += [f"/settings/robots/{p}/" for p in pipelines] + [f"/settings/robots/{p}/new/" for p in pipelines]
                urls += [f"/settings/robots/{p}/trigger/new/" for p in pipelines]
            first = records_visible_to(actor, type_id).order_by("-id").first()
            if first is not None:
                urls += [f"/crm/{kind}/{first.pk}/", f"/crm/{kind}/{first.pk}/duplicates/"]
                if type_id in (1, 2):
                    urls.append(f"/settings/robots/{first.pipeline_id}/dry-run/?record={first.pk}&stage={first.stage_id}")
        for url in urls:
            status = client.get(url).status_code
            assert status in (200, 302, 403, 404), (user.username, url, status)
        assert client.get("/").status_code == 200, user.username
