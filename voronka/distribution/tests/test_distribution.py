"""Distribution (F14): fairness per mode, presence, caps, free items, taking and hand-off (F17)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection, connections, transaction

from voronka.core import entity_types
from voronka.core.actor import Actor
from voronka.core.errors import Conflict
from voronka.core.models import TimelineEntry
from voronka.distribution import actions
from voronka.distribution.models import FreeItem, Queue
from voronka.intake.actions import Routing, create_intake_lead
from voronka.leads.actions import create_lead
from voronka.leads.models import Lead

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system(cause="test", entry_point="intake")


def _intake(queue, n: int, start: int = 0) -> list[Lead]:
    leads = []
    for i in range(start, start + n):
        with transaction.atomic():
            leads.append(create_intake_lead(SYSTEM, {"title": f"Заявка {i}"}, Routing(source="test", queue_id=queue.pk)))
    return leads


def test_round_robin_over_1000_leads_differs_by_at_most_one(lead_pipeline, queue, users):
    absent = users[4]
    actions.set_presence(Actor.for_user(absent, "ui"), False)
    leads = _intake(queue, 1000)
    counts = Counter(lead.responsible_id for lead in leads)
    assert absent.pk not in counts  # absent users get none
    assert set(counts) == {u.pk for u in users[:4]}
    assert max(counts.values()) - min(counts.values()) <= 1
    entry = TimelineEntry.objects.filter(entity_type_id=1, entity_id=leads[0].pk, kind="responsible").get()
    assert entry.data["queue"] == queue.pk and entry.data["event"] == "assigned"


def test_cap_then_free_items_wait_for_someone_to_arrive(lead_pipeline, queue, users):
    Queue.objects.filter(pk=queue.pk).update(cap=2)
    for u in users[1:]:
        actions.set_presence(Actor.for_user(u, "ui"), False)
    leads = _intake(queue, 4)
    assert [lead.responsible_id for lead in leads] == [users[0].pk, users[0].pk, None, None]
    assert FreeItem.objects.count() == 2
    actions.set_presence(Actor.for_user(users[1], "ui"), True)  # comes to work: picks the waiting items up
    assert sorted(Lead.objects.values_list("responsible_id", flat=True)) == sorted([users[0].pk] * 2 + [users[1].pk] * 2)
    assert not FreeItem.objects.exists()
    assert TimelineEntry.objects.filter(kind="responsible", data__event="assigned_free").count() == 2


def test_nobody_present_the_item_stays_free_and_a_member_takes_it(admin, lead_pipeline, queue, users):
    from voronka.core.errors import NotFound

    for u in users:
        actions.set_presence(Actor.for_user(u, "ui"), False)
    [lead] = _intake(queue, 1)
    assert lead.responsible_id is None and FreeItem.objects.filter(entity_id=lead.pk).exists()
    taker = Actor.for_user(users[2], "ui")
    actions.take(taker, entity_types.LEAD, lead.pk)
    assert Lead.objects.get(pk=lead.pk).responsible_id == users[2].pk
    with pytest.raises(Conflict):
        actions.take(admin, entity_types.LEAD, lead.pk)
    with pytest.raises(NotFound):  # no longer free, and not theirs to see
        actions.take(Actor.for_user(users[3], "ui"), entity_types.LEAD, lead.pk)
    assert TimelineEntry.objects.filter(entity_id=lead.pk, kind="responsible", data__event="taken").exists()


def test_least_loaded_gives_to_the_one_with_fewest_open_items(admin, lead_pipeline, queue, users):
    Queue.objects.filter(pk=queue.pk).update(mode="least_loaded")
    for i, u in enumerate(users):
        for _ in range(i):  # seller0 has 0 open leads, seller4 has 4
            create_lead(admin, title="old", responsible=u.pk)
    leads = _intake(queue, 3)
    # 0 open → seller0; then seller0 and seller1 both have 1: the tie goes round → seller1; then seller0 again
    assert [lead.responsible_id for lead in leads] == [users[0].pk, users[1].pk, users[0].pk]


def test_weighted_mode_shares_in_proportion(admin, lead_pipeline, users):
    queue = actions.create_queue(admin, code="w", name="W", mode="weighted",
                                 members=[{"user": users[0].pk, "weight": 3}, {"user": users[1].pk, "weight": 1}])
    counts = Counter(lead.responsible_id for lead in _intake(queue, 40))
    assert counts == {users[0].pk: 30, users[1].pk: 10}


def test_hand_off_by_a_head_is_on_the_timeline(admin, lead_pipeline, users):
    lead = create_lead(admin, title="Живой клиент", responsible=users[0].pk)
    actions.hand_off(admin, entity_types.LEAD, lead.pk, users[1].pk, note="Готов купить сейчас")
    assert Lead.objects.get(pk=lead.pk).responsible_id == users[1].pk
    entry = TimelineEntry.objects.get(entity_id=lead.pk, kind="responsible")
    assert "Готов купить сейчас" in entry.text and entry.data == {"from": users[0].pk, "user": users[1].pk,
                                                                   "event": "hand_off"}


def test_presence_of_another_user_needs_their_head_or_an_administrator(users):
    from voronka.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        actions.set_presence(Actor.for_user(users[0], "ui"), False, user_id=users[1].pk)


@pytest.mark.django_db(transaction=True)
def test_cap_holds_under_8_concurrent_intake_clients(admin, lead_pipeline, users):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the concurrent run is for PostgreSQL")
    queue = actions.create_queue(admin, code="c", name="C", cap=5, members=[{"user": u.pk} for u in users])
    errors = []
    barrier = threading.Barrier(8)

    def client(n: int) -> None:
        try:
            barrier.wait()
            for i in range(5):
                with transaction.atomic():
                    create_intake_lead(SYSTEM, {"title": f"c{n}-{i}"}, Routing(source="t", queue_id=queue.pk))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    counts = Counter(Lead.objects.values_list("responsible_id", flat=True))
    assert counts[None] == 40 - 25 and all(counts[u.pk] == 5 for u in users)  # nobody above the cap
    assert FreeItem.objects.count() == 15


def test_a_queue_on_working_hours_skips_people_outside_their_working_time(admin, lead_pipeline, queue, users):
    """The working calendar counts as presence (alongside the at-work switch): a member on vacation or outside
    their hours gets nothing; waiting items go out when the working day begins (the worker's job)."""
    import datetime
    from zoneinfo import ZoneInfo

    from voronka.calendars import actions as calendars
    from voronka.core import clock, jobs

    actions.update_queue(admin, queue.pk, working_hours=True)
    calendars.set_company_calendar(admin, time_zone="Europe/Moscow")  # the default week: Mon–Fri 9:00–18:00
    tuesday = datetime.datetime(2026, 12, 1, 11, 0, tzinfo=ZoneInfo("Europe/Moscow"))
    calendars.add_absence(admin, users[0].pk, starts_on="2026-12-01", ends_on="2026-12-01", reason="Отпуск")
    calendars.set_user_schedule(admin, users[1].pk, week={"tue": [["14:00", "18:00"]]})  # works afternoons
    try:
        clock.freeze(tuesday)
        leads = _intake(queue, 6)
        assert {lead.responsible_id for lead in leads} == {u.pk for u in users[2:]}  # neither 0 nor 1
        clock.freeze(tuesday.replace(hour=21))  # after hours: nobody works, the item waits
        [late] = _intake(queue, 1, start=6)
        assert late.responsible_id is None and FreeItem.objects.filter(entity_id=late.pk).exists()
        assert jobs.registered()["distribution"]() == 0  # the worker's job: still nobody at work
        clock.freeze(tuesday + datetime.timedelta(days=1, hours=-2))  # Wednesday 9:00: the day begins
        assert jobs.registered()["distribution"]() == 1
        late.refresh_from_db()
        # users[0] is back from vacation; users[1] works on Tuesdays only
        assert late.responsible_id in {users[0].pk} | {u.pk for u in users[2:]}
        assert not FreeItem.objects.exists()
    finally:
        clock.freeze(None)
    Queue.objects.filter(pk=queue.pk).update(working_hours=False)  # without the flag the calendar is not asked
    clock.freeze(tuesday.replace(hour=21))
    try:
        assert _intake(queue, 1, start=7)[0].responsible_id is not None
    finally:
        clock.freeze(None)


def test_the_pick_reads_the_members_and_their_users_as_the_orm_would(lead_pipeline, queue, users):
    """The members of a pick come from a query compiled once: the same rows, turn order and users (loaded with them)
    as ``queue.members.select_related("user")``."""
    from django.test.utils import CaptureQueriesContext

    from voronka.identity.models import User

    User.objects.filter(pk=users[2].pk).update(is_present=False)
    _intake(queue, 3)
    orm = list(queue.members.select_related("user").order_by("sort", "id"))
    with CaptureQueriesContext(connection) as ctx:
        members = actions._members(queue.pk)
        seen = [(m.pk, m.user_id, m.user.pk, m.user.username, m.user.is_present, m.assigned_count, m.sort)
                for m in members]
    assert len(ctx.captured_queries) == 1  # the users come with their members
    assert seen == [(m.pk, m.user_id, m.user.pk, m.user.username, m.user.is_present, m.assigned_count, m.sort)
                    for m in orm]
    assert [m.user.is_present for m in members].count(False) == 1
