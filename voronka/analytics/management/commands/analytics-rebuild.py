"""``voronka analytics-rebuild``: recompute the reports' daily read model from the records and their stage history."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _


class Command(BaseCommand):
    help = (
        "Recompute the daily totals the reports read (new leads, lead conversion, deals, the stage funnel, lost "
        "reasons) and the histograms of durations (time in each stage, time to close) from the records and their "
        "stage history. Idempotent; run it after `voronka generate`, after a bulk load that "
        "bypasses the actions, or after changing a pipeline's stages (the reports count the records until "
        "then). Every other write keeps the totals up to date in its own transaction."
    )

    def handle(self, *args, **options):
        from voronka.pipelines import daily

        began = time.monotonic()
        done = daily.rebuild_all()
        for code, rows in done.items():
            self.stdout.write(_("%(kind)s: %(rows)s rows") % {"kind": code, "rows": rows})
        self.stdout.write(_("Done in %(s).1f s.") % {"s": time.monotonic() - began})
