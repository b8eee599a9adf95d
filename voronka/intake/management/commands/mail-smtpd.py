"""``voronka mail-smtpd [--bind HOST:PORT]``: the built-in SMTP endpoint of intake mailboxes.

It accepts mail only for the recipient addresses of active SMTP mailboxes (others get 550), stores every
message in the intake log and processes it like the IMAP poller does. Put it behind your MTA (e.g. a
Postfix transport to 127.0.0.1:2525) or point an MX at it. SIGTERM or Ctrl-C stops it.
"""

from __future__ import annotations

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def parse_bind(value: str) -> tuple[str, int]:
    host, sep, port = (value or "").rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"--bind must be HOST:PORT, e.g. 127.0.0.1:2525 (got «{value}»)")
    return host.strip("[]") or "127.0.0.1", int(port)


class Command(BaseCommand):
    help = "Run the built-in SMTP endpoint that receives mail for intake mailboxes."

    def add_arguments(self, parser):
        parser.add_argument("--bind", default="", help="HOST:PORT (default: VORONKA_SMTPD, else 127.0.0.1:2525)")

    def handle(self, *args, bind: str, **options):
        from voronka.intake.mail import smtp_controller

        host, port = parse_bind(bind or getattr(settings, "VORONKA_SMTPD", "") or "127.0.0.1:2525")
        controller = smtp_controller(host, port)
        try:
            controller.start()
        except Exception as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from None
        self.stdout.write(f"intake SMTP endpoint listening on {host}:{port}")
        self.stdout.flush()
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        try:
            stop.wait()
        finally:
            controller.stop()
            self.stdout.write("intake SMTP endpoint stopped")
