"""``voronka import FILE --type contacts|companies|leads|deals``: import a spreadsheet from the command line.

The mapping is suggested from the header names unless ``--mapping`` gives it (JSON text or a JSON file).
``--dry-run`` runs every row through the write path and rolls it back: exact totals, nothing written.
The import runs in this process with a progress bar; rejected rows go to ``--report`` (CSV).
"""

from __future__ import annotations

import json
import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from voronka.core.actor import Actor
from voronka.core.errors import ActionError
from voronka.imports import actions, runner
from voronka.imports import mapping as mp
from voronka.imports.models import ImportJob


def _error(exc: ActionError) -> CommandError:
    details = "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.fields.items())
    return CommandError(f"{exc.message} ({details})" if details else exc.message)


class Command(BaseCommand):
    help = "Import contacts, companies, leads, deals or custom list rows from an XLSX or CSV file (F52)."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="the .xlsx or .csv file")
        from voronka.core import entity_types

        entity_types.all_types()  # custom lists (by code) are import types too
        parser.add_argument("--type", choices=sorted(mp.TYPES), help="what the rows are (or a custom list's code)")
        parser.add_argument("--mapping", default=None,
                            help='JSON {"column": "target"} or a path to a JSON file; default: suggested from headers')
        parser.add_argument("--mode", choices=ImportJob.Mode.values, default=ImportJob.Mode.MATCH_OR_CREATE,
                            help="matching of contacts and companies (default match_or_create)")
        parser.add_argument("--match-by", default=None, help="comma-separated keys among email,phone,inn,name")
        parser.add_argument("--user", default=None, help="login of the user the import acts for "
                                                         "(default: the only active superuser)")
        parser.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
        parser.add_argument("--batch-size", type=int, default=None, help="rows per transaction (default 200)")
        parser.add_argument("--report", default=None, help="write the rejected rows with reasons to this CSV file")
        parser.add_argument("--resume", type=int, default=None, metavar="JOB", help="continue an interrupted import")
        parser.add_argument("--show-mapping", action="store_true", help="print the suggested mapping and stop")
        parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")

    def _user(self, login):
        users = get_user_model().objects.filter(is_active=True)
        if login:
            user = users.filter(username=login).first()
            if user is None:
                raise CommandError(_("No active user with login «%(login)s».") % {"login": login})
            return user
        admins = list(users.filter(is_superuser=True)[:2])
        if len(admins) != 1:
            raise CommandError(_("Say who imports: --user LOGIN."))
        return admins[0]

    def handle(self, *args, **opts):
        actor = Actor.for_user(self._user(opts["user"]), "cli")
        try:
            if opts["resume"]:
                job = actions.get_job(actor, opts["resume"])
                if job.status == ImportJob.Status.DONE:
                    raise CommandError(_("Import #%(id)s is already done.") % {"id": job.pk})
                ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.QUEUED)
            else:
                job = self._create(actor, opts)
            if opts["show_mapping"]:
                self.stdout.write(json.dumps(job.mapping, ensure_ascii=False, indent=2))
                return
            self._describe(job)
            if opts["dry_run"]:
                self._dry_run(actor, job, opts)
                return
            if job.status == ImportJob.Status.DRAFT:
                actions.start(actor, job)
            job = self._run(actor, job, opts)
        except ActionError as exc:
            raise _error(exc) from None
        self._report(job, opts)

    def _create(self, actor, opts) -> ImportJob:
        path = opts["file"]
        if not path or not opts["type"]:
            raise CommandError(_("Give the FILE and --type (or --resume JOB)."))
        if not os.path.isfile(path):
            raise CommandError(_("No file «%(path)s».") % {"path": path})
        column_map = None
        if opts["mapping"]:
            text = opts["mapping"]
            if os.path.isfile(text):
                with open(text, encoding="utf-8") as f:
                    text = f.read()
            try:
                column_map = json.loads(text)
            except ValueError as exc:
                raise CommandError(_("--mapping is not valid JSON: %(e)s") % {"e": exc}) from None
        options = {}
        if opts["match_by"]:
            options["match_by"] = [k.strip() for k in opts["match_by"].split(",") if k.strip()]
        if opts["batch_size"]:
            options["batch_size"] = opts["batch_size"]
        with open(path, "rb") as f:
            return actions.create_job(actor, file=f, file_name=os.path.basename(path), type=opts["type"],
                                      mapping=column_map, mode=opts["mode"], options=options)

    def _describe(self, job: ImportJob) -> None:
        self.stdout.write(_("Import #%(id)s: %(file)s") % {"id": job.pk, "file": job.file_name})
        for column, target in job.mapping.items():
            self.stdout.write(f"  {column} → {target}")
        ignored = [h for h in job.headers if h not in job.mapping]
        if ignored:
            self.stdout.write(_("  not imported: %(cols)s") % {"cols": ", ".join(ignored)})

    def _progress(self, opts, total):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                        TextColumn("{task.fields[counts]}"), disable=opts["no_progress"], transient=False)

    def _run(self, actor, job: ImportJob, opts) -> ImportJob:
        job.refresh_from_db()
        with self._progress(opts, job.total_rows) as bar:
            task = bar.add_task(_("Importing"), total=job.total_rows, completed=job.processed_rows, counts="")

            def progress(j):
                bar.update(task, completed=j.processed_rows, counts=_(
                    "created %(c)s · matched %(m)s · rejected %(r)s") % {
                    "c": j.created_count, "m": j.matched_count, "r": j.rejected_count})

            result = runner.run(job.pk, progress=progress, actor=actor)
        if result is None:
            raise CommandError(_("Import #%(id)s is not waiting to run.") % {"id": job.pk})
        return result

    def _dry_run(self, actor, job: ImportJob, opts) -> None:
        total = None
        with self._progress(opts, total) as bar:
            task = bar.add_task(_("Checking"), total=total, counts="")
            result = runner.dry_run(actor, job, progress=lambda done, totals: bar.update(
                task, completed=done, counts=str(totals)))
        totals = result["totals"]
        self.stdout.write(_("Dry run, nothing written: %(c)s to create, %(m)s matched, %(r)s rejected.") % {
            "c": totals["create"], "m": totals["match"], "r": totals["reject"]})
        for row in result["rejected"][:50]:
            self._reject_line(row["row"], row["errors"])
        ImportJob.objects.filter(pk=job.pk).delete()

    def _reject_line(self, number, errors) -> None:
        reasons = "; ".join(f"{e['column']}: {e['message']}" if e.get("column") else e["message"] for e in errors)
        self.stdout.write(_("  row %(n)s: %(reasons)s") % {"n": number, "reasons": reasons})

    def _report(self, job: ImportJob, opts) -> None:
        if job.status == ImportJob.Status.FAILED:
            raise CommandError(_("Import #%(id)s failed: %(error)s (continue with --resume %(id)s)") % {
                "id": job.pk, "error": job.error})
        self.stdout.write(_("Done: %(c)s created, %(m)s matched, %(r)s rejected.") % {
            "c": job.created_count, "m": job.matched_count, "r": job.rejected_count})
        for record, kinds in sorted((job.stats or {}).items()):
            self.stdout.write(f"  {record}: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
        for row in job.rejected.order_by("row_number")[:20]:
            self._reject_line(row.row_number, row.errors)
        if opts["report"]:
            with open(opts["report"], "w", encoding="utf-8", newline="") as f:
                for line in runner.report_lines(job):
                    f.write(line)
            self.stdout.write(_("Rejected rows with reasons: %(path)s") % {"path": opts["report"]})
