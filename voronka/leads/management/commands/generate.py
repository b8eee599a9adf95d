"""``voronka generate``: bulk synthetic data for benchmarks."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from .demo import _Progress


class Command(BaseCommand):
    help = (
        "Bulk-create synthetic leads, deals, contacts and companies for benchmarks, fast (a million leads in "
        "minutes on SQLite). FOR BENCHMARKS ONLY: it bypasses the action layer and writes rows with bulk_create "
        "(no validation, no permission checks, no timeline entries, no outbox events). The rows are consistent: "
        "records sit in stages of existing pipelines (minimal pipelines are created when there are none; run "
        "it after `voronka demo` to use the demo's), every record has stage-history rows from creation to its "
        "current stage, phones and e-mails are stored normalised (E.164), and creation dates are spread over "
        "the last year."
    )

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=0, help="number of leads")
        parser.add_argument("--deals", type=int, default=0, help="number of deals (linked to existing contacts)")
        parser.add_argument("--contacts", type=int, default=0, help="number of contacts (linked to companies)")
        parser.add_argument("--companies", type=int, default=0, help="number of companies")
        parser.add_argument("--batch", type=int, default=5000, help="records per transaction (default 5000)")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for repeatable data")
        parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")

    def handle(self, *args, **options):
        from voronka.leads.generate import generate

        counts = {k: options[k] for k in ("leads", "deals", "contacts", "companies")}
        if any(v < 0 for v in counts.values()) or options["batch"] < 1:
            raise CommandError("Counts must not be negative and --batch must be at least 1.")
        if not any(counts.values()):
            raise CommandError("Nothing to do: give --leads, --deals, --contacts and/or --companies.")
        with _Progress(enabled=not options["no_progress"]) as progress:
            try:
                report = generate(**counts, batch=options["batch"], seed=options["seed"], progress=progress.update)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        for label, n in report.records.items():
            seconds = report.seconds.get(label, 0.0) or 1e-9
            self.stdout.write(f"{label}: {n} in {seconds:.1f} s ({n / seconds:,.0f}/s)")
        if "stage totals" in report.seconds:
            self.stdout.write(f"stage totals rebuilt in {report.seconds['stage totals']:.1f} s")
        seconds = report.total_seconds or 1e-9
        detail = ", ".join(f"{label} {n}" for label, n in report.rows.items())
        self.stdout.write(f"rows written: {report.total_rows} ({detail}) in {seconds:.1f} s: "
                          f"{report.total_rows / seconds:,.0f} rows/s")
