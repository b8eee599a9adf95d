"""``voronka intake replay ID [--force]``, ``voronka intake pending``, ``voronka intake process``,
``voronka intake reindex``."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from voronka.core.actor import Actor
from voronka.core.errors import ActionError


class Command(BaseCommand):
    help = "Intake: replay a logged payload, list pending ones, rebuild the name index of duplicate search."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="op", required=True)
        replay = sub.add_parser("replay", help="process a logged payload again")
        replay.add_argument("ids", nargs="+", type=int)
        replay.add_argument("--force", action="store_true", help="also a payload that already produced something")
        sub.add_parser("pending", help="list payloads that are still pending (crashed while processing)")
        process = sub.add_parser("process", help="process the queued web-form submissions now (what the worker "
                                                 "does), batch after batch until the queue is empty")
        process.add_argument("--batch", type=int, default=0, help="payloads per batch (default: the worker's)")
        sub.add_parser("reindex", help="rebuild the name index used by duplicate search")

    def handle(self, *args, op: str, **options):
        from voronka.intake import actions, names
        from voronka.intake.models import IntakeLog

        actor = Actor.system(cause="cli:intake", entry_point="cli")
        if op == "replay":
            failed = False
            for log_id in options["ids"]:
                try:
                    entry = actions.replay(actor, log_id, force=options["force"])
                except ActionError as exc:
                    self.stderr.write(f"#{log_id}: {exc.message}")
                    failed = True
                    continue
                target = f" → {entry.entity_type_id}:{entry.entity_id}" if entry.entity_id else ""
                self.stdout.write(f"#{entry.pk}: {entry.status}{target} {entry.reason}".rstrip())
                failed |= entry.status == IntakeLog.Status.PENDING
            if failed:
                raise CommandError("some payloads were not processed")
        elif op == "pending":
            for entry in IntakeLog.objects.filter(status=IntakeLog.Status.PENDING).order_by("id")[:1000]:
                self.stdout.write(f"#{entry.pk} {entry.channel} {entry.received_at:%Y-%m-%d %H:%M:%S} "
                                  f"attempts={entry.attempts}")
        elif op == "process":
            total = 0
            while True:
                done = actions.process_queued(options["batch"] or None)
                total += done
                if not done:
                    break
            counts = actions.queued_stats()
            self.stdout.write(f"processed {total} queued payload(s); {counts['count']} still queued")
        else:
            self.stdout.write(f"indexed {names.rebuild()} records")
