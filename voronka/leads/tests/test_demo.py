"""``voronka demo`` (a small company, through the actions) and ``voronka generate`` (bulk benchmark rows)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Count
from django.utils import timezone

from voronka.activities.models import Task
from voronka.core.models import OutboxEvent, TimelineEntry
from voronka.core.normalize import normalize_phone
from voronka.deals.models import Deal
from voronka.identity.models import Department, User
from voronka.leads.models import Lead, Source
from voronka.parties.models import BankRequisite, Communication, Company, Contact
from voronka.pipelines.models import Pipeline, Stage, StageHistory

pytestmark = pytest.mark.django_db


def _demo(**options) -> str:
    out = StringIO()
    call_command("demo", leads=100, deals=30, no_progress=True, stdout=out, **options)
    return out.getvalue()


def _check_history(entity_type_id: int, objs, now) -> None:
    """Every record's stage history starts at its creation and ends in its current stage, in time order."""
    rows: dict[int, list[StageHistory]] = {}
    for row in StageHistory.objects.filter(entity_type_id=entity_type_id).order_by("id"):
        rows.setdefault(row.entity_id, []).append(row)
    stages = {s.pk: s for s in Stage.objects.all()}
    for obj in objs:
        hist = rows.get(obj.pk)
        assert hist, f"{obj} has no stage history"
        assert hist[0].from_stage_id is None and hist[0].seconds_in_previous is None
        assert hist[0].moved_at == obj.created_at
        assert hist[-1].to_stage_id == obj.stage_id and hist[-1].moved_at == obj.stage_changed_at
        assert stages[obj.stage_id].pipeline_id == obj.pipeline_id
        assert obj.stage_semantics == stages[obj.stage_id].semantics
        assert (obj.closed_at is not None) == (obj.stage_semantics != "process")
        for prev, row in zip(hist, hist[1:], strict=False):
            assert row.from_stage_id == prev.to_stage_id
            assert row.moved_at >= prev.moved_at
            assert row.seconds_in_previous == int((row.moved_at - prev.moved_at).total_seconds())
            assert stages[row.to_stage_id].pipeline_id == row.pipeline_id
        assert obj.created_at <= now


def test_demo_loads_a_company_and_is_idempotent(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    out = _demo()
    now = timezone.now()

    # users, departments with heads, a known password printed and saved
    password = re.search(r"login: admin / password: (\S+)", out).group(1)
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    for login in ("operator1", "manager1", "master1", "support1", "farmer1", "director"):
        user = User.objects.get(username=login)
        assert user.check_password(password) and user.department is not None and user.middle_name
    assert User.objects.get(username="operator1").department.name == "Колл-центр"
    assert User.objects.get(username="operator1").head().username == "cc_head"
    assert Department.objects.filter(head__isnull=False).count() == Department.objects.count()
    assert password in (tmp_path / "demo-login.txt").read_text()
    # roles (F40): the departments get their preset roles, heads see everything
    from voronka.identity.permissions import compute_grants

    operator = compute_grants(User.objects.get(username="operator1"))
    assert operator.scope(1, "update", None) > 0 and operator.scope(2, "read", None) == 0
    assert compute_grants(User.objects.get(username="manager1")).scope(2, "update", None) > 0
    assert compute_grants(User.objects.get(username="master1")).scope(2, "update", None) > 0
    assert compute_grants(User.objects.get(username="sales_head")).scope(2, "read", None) >= 50  # all

    # pipelines of seeds 000-002 and the repeat-sale one (F12)
    leads_pipeline = Pipeline.objects.get(entity_type_id=1, code="leads")
    names = list(leads_pipeline.stages.order_by("sort").values_list("name", flat=True))
    assert names[:7] == ["Не обработан", "Назначен менеджер", "Квалифицирован", "Назначена встреча",
                         "Встреча проведена", "Отправлено КП", "Получено согласие"]
    assert leads_pipeline.stages.filter(semantics="failure").count() >= 5
    assert set(Pipeline.objects.filter(entity_type_id=2).values_list("code", flat=True)) == {
        "sales", "production", "complaints", "repeat", "welcome"}  # welcome: intake's dispatcher demo (seed 004)
    assert Source.objects.filter(code="yandex_direct").exists() and Source.objects.count() >= 8

    # records
    assert Lead.objects.count() == 100
    # today's production work, made after the history (``automation.demo.in_flight``; leads may not import it)
    in_flight = ["Кронштейны для КАМАЗа, 40 шт.", "Рама прицепа 8 м", "Ограждения склада, 120 м",
                 "Металлоконструкции навеса", "Кузов-фургон на ГАЗель"]
    assert Deal.objects.filter(title__in=in_flight).count() == len(in_flight)
    deals = Deal.objects.exclude(title__in=in_flight).count()
    assert 25 <= deals <= 30
    assert Contact.objects.exists() and Company.objects.exists() and BankRequisite.objects.exists()
    assert all(re.fullmatch(r"\+7\d{10}", c.normalized) and normalize_phone(c.value) == c.normalized
               for c in Communication.objects.filter(kind="phone"))
    lead_stages = dict(Lead.objects.values_list("stage__code").annotate(n=Count("id")))
    assert lead_stages.get("converted", 0) >= 5
    assert len({code for code in lead_stages if code in ("junk", "duplicate", "no_answer", "not_target",
                                                         "competitor", "refused")}) >= 3
    assert Lead.objects.filter(stage_semantics="process").exists()  # some are still in work
    converted = Lead.objects.filter(converted_at__isnull=False)
    assert converted.count() == lead_stages["converted"]
    assert Deal.objects.filter(lead__in=converted).count() >= converted.count()
    assert Deal.objects.filter(pipeline__code="production").exists()
    assert Deal.objects.filter(pipeline__code="repeat", is_repeat=True).exists()
    assert Lead.objects.exclude(title="").count() == 100

    # history spread over the last six months, consistent with the records
    oldest = Lead.objects.order_by("created_at").first().created_at
    assert now - dt.timedelta(days=184) <= oldest <= now - dt.timedelta(days=60)
    _check_history(1, Lead.objects.all(), now)
    _check_history(2, Deal.objects.exclude(title__in=in_flight), now)  # made live: the clock moved on between writes
    ordered = list(Lead.objects.order_by("id").values_list("created_at", flat=True))
    assert ordered == sorted(ordered)  # ids grow with time
    assert TimelineEntry.objects.filter(kind="converted").count() == converted.count()
    assert TimelineEntry.objects.filter(kind="comment").exists()
    assert not TimelineEntry.objects.filter(created_at__gt=now).exists()
    assert OutboxEvent.objects.filter(name="lead.stage_changed").exists()

    # the actions kept the per-stage totals read model in step with the records
    from voronka.pipelines.models import StageTotal

    per_stage = dict(Lead.objects.values_list("stage_id").annotate(n=Count("id")))
    totals: dict[int, int] = {}
    for stage_id, count in StageTotal.objects.filter(entity_type_id=1).values_list("stage_id", "count"):
        totals[stage_id] = totals.get(stage_id, 0) + count
    assert {k: v for k, v in totals.items() if v} == per_stage
    # the reports' read models were rebuilt after the dates were rewritten (and kept by the actions after that):
    # incremental equals a fresh rebuild, and they count what the records say
    from django.db.models import Sum

    from voronka.pipelines import daily
    from voronka.pipelines.models import DailyTotal, StayTotal

    def rows():
        return (sorted(DailyTotal.objects.exclude(count=0, amount=0).values_list(
                    "entity_type_id", "kind", "grain", "day", "pipeline_id", "stage_id", "responsible_id", "count")),
                sorted(StayTotal.objects.exclude(count=0).values_list(
                    "entity_type_id", "kind", "grain", "day", "stage_id", "bucket", "count", "seconds")))

    kept = rows()
    daily.rebuild_all()
    assert rows() == kept
    live_leads = Lead.objects.filter(deleted_at__isnull=True)
    assert DailyTotal.objects.filter(entity_type_id=1, kind="created", grain="d").aggregate(n=Sum("count"))["n"] \
        == live_leads.count()
    stays = StageHistory.objects.filter(entity_type_id=1, entity_id__in=live_leads.values("id"),
                                        from_stage__isnull=False, seconds_in_previous__isnull=False)
    assert StayTotal.objects.filter(entity_type_id=1, kind="stay", grain="m").aggregate(n=Sum("count"))["n"] \
        == stays.count() > 0
    assert DailyTotal.objects.filter(entity_type_id=1, kind="deal", grain="m").aggregate(n=Sum("count"))["n"] \
        == live_leads.filter(pk__in=Deal.objects.filter(deleted_at__isnull=True).values("lead_id")).count() > 0

    # tasks: done ones and open ones, some overdue
    assert Task.objects.filter(status="done", completed_at__isnull=False).exists()
    assert Task.objects.filter(status="open", deadline__lt=now).exists()

    # a second run changes nothing
    before = (Lead.objects.count(), Deal.objects.count(), User.objects.count(), StageHistory.objects.count(),
              TimelineEntry.objects.count())
    again = _demo()
    assert "already loaded" in again and password in again
    assert before == (Lead.objects.count(), Deal.objects.count(), User.objects.count(),
                      StageHistory.objects.count(), TimelineEntry.objects.count())


def test_demo_leaves_a_database_with_other_data_alone(settings, tmp_path, admin, lead_pipeline):
    from voronka.leads.actions import create_lead

    settings.VAR_DIR = tmp_path
    create_lead(admin, title="Своя заявка")
    out = _demo()
    assert "not loaded" in out
    assert Lead.objects.count() == 1 and not User.objects.filter(username="operator1").exists()


def test_demo_rejects_negative_sizes():
    with pytest.raises(CommandError):
        call_command("demo", leads=-1, no_progress=True, stdout=StringIO())


def test_generate_creates_consistent_rows_in_an_empty_database():
    out = StringIO()
    call_command("generate", leads=400, deals=60, contacts=50, companies=10, batch=150, seed=7, no_progress=True,
                 stdout=out)
    now = timezone.now()
    assert (Lead.objects.count(), Deal.objects.count(), Contact.objects.count(), Company.objects.count()) == \
        (400, 60, 50, 10)
    assert "rows/s" in out.getvalue()
    # minimal pipelines were created through the actions
    assert Pipeline.objects.filter(entity_type_id=1).exists() and Pipeline.objects.filter(entity_type_id=2).exists()
    _check_history(1, Lead.objects.all(), now)
    _check_history(2, Deal.objects.all(), now)
    assert StageHistory.objects.filter(entity_type_id=1).count() > 400  # some leads moved on
    # some records were sent back a stage and moved on again (the reports must count such paths honestly)
    for type_id in (1, 2):
        visits = Counter(StageHistory.objects.filter(entity_type_id=type_id).values_list("entity_id", "to_stage_id"))
        assert any(n > 1 for n in visits.values())
    assert Lead.objects.filter(stage_semantics="failure").exists() and Lead.objects.filter(stage_semantics="process")
    oldest = Lead.objects.order_by("id").first().created_at
    assert now - dt.timedelta(days=366) <= oldest <= now - dt.timedelta(days=360)
    ordered = list(Lead.objects.order_by("id").values_list("created_at", flat=True))
    assert ordered == sorted(ordered)
    # every lead has a phone, stored normalised for lookups (F13)
    phones = Communication.objects.filter(entity_type_id=1, kind="phone")
    assert phones.values("entity_id").distinct().count() == 400
    for comm in phones[:100]:
        assert normalize_phone(comm.value) == comm.normalized
    for comm in Communication.objects.filter(kind="email")[:50]:
        assert comm.normalized == comm.value.lower()
    assert Communication.objects.filter(entity_type_id=3).values("entity_id").distinct().count() == 50
    assert Communication.objects.filter(entity_type_id=4).count() == 30

    sites = dict(Communication.objects.filter(entity_type_id=4, kind="web").values_list("entity_id", "value"))
    assert sites == dict(Company.objects.values_list("id", "site"))  # a company's site is its first web address
    # links point at real rows
    assert not Deal.objects.filter(contact__isnull=False).exclude(contact_id__in=Contact.objects.values("id")).exists()
    assert not Contact.objects.filter(company__isnull=False).exclude(
        company_id__in=Company.objects.values("id")).exists()
    # the stage totals read model matches the records
    from voronka.pipelines.models import StageTotal

    for type_id, model in ((1, Lead), (2, Deal)):
        per_stage = dict(model.objects.values_list("stage_id").annotate(n=Count("id")))
        totals = {}
        for stage_id, count in StageTotal.objects.filter(entity_type_id=type_id).values_list("stage_id", "count"):
            totals[stage_id] = totals.get(stage_id, 0) + count
        assert {k: v for k, v in totals.items() if v} == per_stage
    # won leads were converted, and most got their deal, created at the conversion (the end-to-end chain)
    won = Lead.objects.filter(stage_semantics="success")
    assert won.exists() and not won.filter(converted_at__isnull=True).exists()
    assert not Lead.objects.exclude(stage_semantics="success").filter(converted_at__isnull=False).exists()
    linked = Deal.objects.filter(lead__isnull=False).select_related("lead")
    assert 0 < linked.count() <= 30  # at most half of the 60 deals
    for deal in linked:
        assert deal.lead.stage_semantics == "success" and deal.created_at == deal.lead.converted_at
    assert linked.values("lead").distinct().count() == linked.count()  # one deal per converted lead
    ordered = list(Deal.objects.order_by("id").values_list("created_at", flat=True))
    assert ordered == sorted(ordered)
    # columns it does not fill have their defaults
    lead = Lead.objects.first()
    assert lead.custom == {} and lead.deleted_at is None and lead.utm_source == "" and lead.currency == "RUB"


def test_generate_uses_the_demo_pipelines(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("demo", leads=20, deals=8, no_progress=True, stdout=StringIO())
    pipelines = Pipeline.objects.count()
    before = Lead.objects.count()
    call_command("generate", leads=200, deals=40, no_progress=True, stdout=StringIO())
    assert Pipeline.objects.count() == pipelines
    assert Lead.objects.count() == before + 200
    new = Lead.objects.order_by("-id")[:200]
    assert {lead.pipeline.code for lead in new} == {"leads"}
    assert Deal.objects.filter(pipeline__code__in=["sales", "production", "complaints", "repeat", "welcome"]).count() >= 40
    _check_history(1, Lead.objects.order_by("-id")[:200], timezone.now())
    from voronka.pipelines.models import StageTotal

    assert sum(StageTotal.objects.filter(entity_type_id=1).values_list("count", flat=True)) == Lead.objects.count()


def test_generate_needs_something_to_do():
    with pytest.raises(CommandError):
        call_command("generate", no_progress=True, stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("generate", leads=-5, no_progress=True, stdout=StringIO())


def test_demo_keeps_an_existing_admin(settings, tmp_path, admin_user):
    settings.VAR_DIR = tmp_path
    out = StringIO()
    call_command("demo", leads=10, deals=4, no_progress=True, stdout=out)
    text = out.getvalue()
    assert "existed before" in text
    admin_user.refresh_from_db()
    assert admin_user.check_password("admin-pass")
    password = re.search(r"with the password (\S+):", (tmp_path / "demo-login.txt").read_text())
    assert password and User.objects.get(username="operator1").check_password(password.group(1))


def test_the_generators_ids_never_reuse_a_deleted_rows(admin, lead_pipeline):
    """A row deleted from the end of the table leaves its id used: the database never gives it again
    (AUTOINCREMENT, a sequence), and neither does the generator's reservation."""
    from voronka.leads.actions import create_lead
    from voronka.leads.generate import reserve_ids

    first = create_lead(admin, title="Kept")
    last = create_lead(admin, title="Removed for good")
    Lead.objects.filter(pk=last.pk).delete()
    ids = reserve_ids(Lead, 3)
    assert len(set(ids)) == 3 and min(ids) > last.pk > first.pk
