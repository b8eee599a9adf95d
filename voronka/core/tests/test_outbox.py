"""The event outbox and the worker that sweeps it.

Events are written in the action's transaction and delivered after commit, exactly once,
to every subscribed consumer; a failing consumer is recorded and blocks nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import transaction

from voronka.core import outbox
from voronka.core.actor import Actor
from voronka.core.models import OutboxEvent

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


class Recorder:
    """A consumer that remembers what it got (and can be told to fail on some events)."""

    def __init__(self, fail_on: str | None = None):
        self.seen: list[tuple[int, str]] = []
        self.fail_on = fail_on

    def __call__(self, event: OutboxEvent) -> None:
        self.seen.append((event.pk, event.name))
        if self.fail_on and event.name == self.fail_on:
            raise RuntimeError(f"consumer broke on {event.name}")


@pytest.fixture
def subscribed():
    """Subscribe consumers for the test only; the registry is global."""
    added: list[tuple[str, outbox.Consumer]] = []

    def sub(pattern: str, consumer):
        outbox.subscribe(pattern, consumer)
        added.append((pattern, consumer))
        return consumer

    yield sub
    for pattern, consumer in added:
        outbox.unsubscribe(pattern, consumer)


def test_without_dispatch_on_commit_the_request_leaves_events_to_the_worker(subscribed,
                                                                            django_capture_on_commit_callbacks):
    got = subscribed("test.", Recorder())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            event = outbox.emit(ACTOR, "test.created", entity_type_id=1, entity_id=42)
    assert not callbacks and got.seen == []  # the default: nothing runs in the request after commit
    assert outbox.dispatch_pending() == 1  # the worker's sweep delivers it
    assert got.seen == [(event.pk, "test.created")]


def test_committed_event_is_dispatched_once_after_commit(subscribed, django_capture_on_commit_callbacks, settings):
    settings.VORONKA_OUTBOX_DISPATCH_ON_COMMIT = True
    got = subscribed("test.", Recorder())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            event = outbox.emit(ACTOR, "test.created", entity_type_id=1, entity_id=42, payload={"a": 1})
            assert got.seen == []  # nothing is delivered before commit
    assert callbacks, "emit() must schedule a dispatch on commit"
    assert got.seen == [(event.pk, "test.created")]
    event.refresh_from_db()
    assert event.dispatched_at is not None
    assert event.error == ""
    assert (event.entity_type_id, event.entity_id, event.payload) == (1, 42, {"a": 1})
    assert (event.actor_kind, event.cause) == ("system", "test")

    # a later sweep (the worker) finds nothing left to deliver
    assert outbox.dispatch_pending() == 0
    assert got.seen == [(event.pk, "test.created")]


def test_dispatch_pending_twice_never_delivers_twice(subscribed):
    got = subscribed("*", Recorder())
    # the test transaction never commits, so only explicit dispatches deliver
    first = outbox.emit(ACTOR, "test.one")
    second = outbox.emit(ACTOR, "test.two")
    assert outbox.dispatch_pending() == 2
    assert outbox.dispatch_pending() == 0
    assert got.seen == [(first.pk, "test.one"), (second.pk, "test.two")]


def test_two_dispatchers_racing_deliver_each_event_once(subscribed, monkeypatch):
    """A second dispatcher runs while the first is delivering, then while the first is between reading the pending
    events and claiming them: each event is delivered once, by whichever claimed it."""
    got = Recorder()

    def nested_dispatcher(event: OutboxEvent) -> None:
        got(event)
        if event.name == "test.one":
            # the first dispatcher has claimed [one, two] and is delivering «one»: nothing is left for this one
            assert outbox.dispatch_pending() == 0

    subscribed("test.", nested_dispatcher)
    one = outbox.emit(ACTOR, "test.one")
    two = outbox.emit(ACTOR, "test.two")
    assert outbox.dispatch_pending() == 2
    assert sorted(got.seen) == [(one.pk, "test.one"), (two.pk, "test.two")]

    real_claim, raced = outbox._claim, []

    def claim_after_another(ids):
        if not raced:  # the other dispatcher read the same pending ids and claims them first
            raced.append(None)
            raced[0] = outbox.dispatch_pending()
        return real_claim(ids)

    three, four = outbox.emit(ACTOR, "test.three"), outbox.emit(ACTOR, "test.four")
    monkeypatch.setattr(outbox, "_claim", claim_after_another)
    assert outbox.dispatch_pending() == 0 and raced == [2]
    assert sorted(got.seen)[2:] == [(three.pk, "test.three"), (four.pk, "test.four")]
    assert OutboxEvent.objects.get(pk=three.pk).attempts == 1  # claimed once


def test_a_sweep_claims_and_marks_a_chunk_in_one_statement_each(subscribed):
    """Not two UPDATEs per event: the chunk's claim, its read and its «done» are one statement each; an event whose
    consumer failed gets its own error."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    subscribed("test.", Recorder(fail_on="test.bad"))
    events = [outbox.emit(ACTOR, "test.bad" if i == 3 else "test.bulk", None, i) for i in range(outbox.CHUNK + 5)]
    with CaptureQueriesContext(connection) as ctx:
        assert outbox.dispatch_pending() == len(events)
    # the pending ids, then two chunks: claim, read, done (and the failed event's own «done»)
    assert len(ctx.captured_queries) == 1 + 2 * 3 + 1
    rows = {pk: (d is not None, e, a) for pk, d, e, a in OutboxEvent.objects.filter(
        pk__in=[e.pk for e in events]).values_list("pk", "dispatched_at", "error", "attempts")}
    assert all(done and attempts == 1 for done, _, attempts in rows.values())
    assert "consumer broke on test.bad" in rows[events[3].pk][1]
    assert [pk for pk, (_, error, _) in rows.items() if error] == [events[3].pk]


def test_rolled_back_transaction_leaves_no_event(subscribed, django_capture_on_commit_callbacks):
    got = subscribed("*", Recorder())
    before = OutboxEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                outbox.emit(ACTOR, "test.created", entity_type_id=1, entity_id=1)
                raise RuntimeError("the action failed")
    assert OutboxEvent.objects.count() == before
    assert outbox.dispatch_pending() == 0
    assert got.seen == []


def test_consumer_failure_is_recorded_and_blocks_nothing(subscribed, caplog):
    broken = subscribed("test.", Recorder(fail_on="test.bad"))
    healthy = subscribed("*", Recorder())
    bad = outbox.emit(ACTOR, "test.bad")
    good = outbox.emit(ACTOR, "test.good")

    assert outbox.dispatch_pending() == 2

    # the failing consumer saw both; the other consumer got both too, the bad one included
    assert broken.seen == [(bad.pk, "test.bad"), (good.pk, "test.good")]
    assert healthy.seen == [(bad.pk, "test.bad"), (good.pk, "test.good")]
    bad.refresh_from_db()
    good.refresh_from_db()
    assert "RuntimeError: consumer broke on test.bad" in bad.error
    assert bad.dispatched_at is not None  # recorded, not retried forever
    assert good.error == "" and good.dispatched_at is not None
    assert "outbox consumer" in caplog.text
    assert outbox.dispatch_pending() == 0


def test_emit_many_and_prefix_patterns(subscribed):
    deals = subscribed("deal.", Recorder())
    exact = subscribed("lead.created", Recorder())
    outbox.emit_many([outbox.build(ACTOR, name, 2, i) for i, name in
                      enumerate(["deal.created", "lead.created", "lead.updated", "deal.stage_changed"])])
    assert outbox.dispatch_pending() == 4
    assert [name for _, name in deals.seen] == ["deal.created", "deal.stage_changed"]
    assert [name for _, name in exact.seen] == ["lead.created"]


def test_worker_once_sweeps_pending_events(subscribed):
    got = subscribed("*", Recorder())
    outbox.emit(ACTOR, "test.left_behind")  # e.g. its web process died before dispatching
    outbox.emit(ACTOR, "test.another")
    call_command("worker", "--once", verbosity=0)
    assert [name for _, name in got.seen] == ["test.left_behind", "test.another"]
    assert not OutboxEvent.objects.filter(dispatched_at__isnull=True).exists()


def test_worker_sweep_goes_past_one_batch(subscribed, monkeypatch):
    from voronka.core.management.commands import worker

    got = subscribed("*", Recorder())
    monkeypatch.setattr(worker, "BATCH", 3)
    outbox.emit_many([outbox.build(ACTOR, "test.bulk", None, i) for i in range(7)])
    assert worker.sweep() == 7
    assert len(got.seen) == 7


def test_worker_process_starts_and_stops_gracefully_on_sigterm(tmp_path: Path):
    """The real command: the sweep loop plus the db_worker child, stopped by one SIGTERM."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "voronka.settings", "VORONKA_VAR_DIR": str(tmp_path),
           "PYTHONUNBUFFERED": "1"}
    if os.environ.get("VORONKA_DATABASE_URL"):
        pytest.skip("needs its own database; covered by the SQLite run")
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], env=env, cwd=root, check=True, timeout=120)
    proc = subprocess.Popen([sys.executable, "-m", "django", "worker", "--interval", "0.1", "--task-interval", "0.1"],
                            env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and "task worker pid" not in line:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "the worker exited early"
        assert "task worker pid" in line
        child_pid = int(line.split("task worker pid")[1].split()[0])
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "worker: stopped" in out
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)


def test_an_event_whose_dispatcher_died_is_delivered_again_after_the_lease(subscribed):
    """At least once: a claim that never completed (the process died) expires and the sweep delivers again."""
    import datetime

    from django.utils import timezone

    got = Recorder()
    subscribed("test.", got)
    event = outbox.emit(ACTOR, "test.crash")
    # a dispatcher claimed it and died before finishing
    OutboxEvent.objects.filter(pk=event.pk).update(claimed_until=timezone.now() + outbox.LEASE, attempts=1)
    assert outbox.dispatch_pending() == 0  # the lease still holds
    OutboxEvent.objects.filter(pk=event.pk).update(claimed_until=timezone.now() - datetime.timedelta(seconds=1))
    assert outbox.dispatch_pending() == 1
    event.refresh_from_db()
    assert event.dispatched_at is not None and event.attempts == 2
    assert got.seen == [(event.pk, "test.crash")]
