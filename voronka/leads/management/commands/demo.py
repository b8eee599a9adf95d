"""``voronka demo``: load the demo company (idempotent)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Load a realistic demo company in Russian (an auto-parts wholesaler with its own workshop): departments "
        "and users, the lead pipeline, Sales/Production/Complaints/Repeat deal pipelines, sources, about 2,000 "
        "leads and 500 deals with contacts, companies, tasks and comments spread over the last six months. "
        "Every record is written through the actions, so history and events are real. Safe to run again: "
        "when the demo is loaded it says so and does nothing. The admin login is printed and saved to "
        "VAR_DIR/demo-login.txt."
    )

    def add_arguments(self, parser):
        parser.add_argument("--leads", type=int, default=2000, help="number of leads (default 2000)")
        parser.add_argument("--deals", type=int, default=500, help="number of deals, about (default 500)")
        parser.add_argument("--seed", type=int, default=2024, help="random seed of the content (default 2024)")
        parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")

    def handle(self, *args, **options):
        from voronka.leads import demo

        if options["leads"] < 0 or options["deals"] < 0:
            raise CommandError("--leads and --deals must not be negative.")
        current = demo.state()
        if current == "loaded":
            self.stdout.write("The demo is already loaded; nothing to do.")
            self._print_login(demo)
            return
        if current == "busy":
            self.stdout.write("The database already holds CRM records, so the demo was not loaded "
                              "(it only loads into an empty database).")
            return
        with _Progress(enabled=not options["no_progress"]) as progress:
            result = demo.load(leads=options["leads"], deals=options["deals"], seed=options["seed"],
                               progress=progress.update)
        counts = result.counts
        self.stdout.write(
            f"Demo «{demo.COMPANY_NAME}» loaded in {result.seconds:.1f} s: {counts.get('leads', 0)} leads, "
            f"{counts.get('deals', 0)} deals, {counts.get('contacts', 0)} contacts, "
            f"{counts.get('companies', 0)} companies, {counts.get('tasks', 0)} tasks, "
            f"{counts.get('comments', 0)} comments, {counts.get('users', 0)} users.")
        path = demo.write_login(result.password, admin=result.admin_created)
        if result.admin_created:
            self.stdout.write(f"login: admin / password: {result.password}")
        else:
            self.stdout.write("The user «admin» existed before the demo; its password was not changed.")
        self.stdout.write(f"The demo staff log in with the same password: {', '.join(result.users)} "
                          f"(saved in {path}).")

    def _print_login(self, demo) -> None:
        path = demo.login_file()
        if path.exists():
            for line in path.read_text().splitlines()[1:]:
                self.stdout.write(line)
            self.stdout.write(f"(see {path})")


class _Progress:
    """A rich progress bar on stderr with one line per phase of the load."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.tasks: dict[str, int] = {}
        self.progress = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=Console(file=sys.stderr), transient=False)
            self.progress.start()
        return self

    def update(self, phase: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        if phase not in self.tasks:
            self.tasks[phase] = self.progress.add_task(phase, total=max(total, 1))
        self.progress.update(self.tasks[phase], completed=done, total=max(total, 1))

    def __exit__(self, *exc):
        if self.progress is not None:
            self.progress.stop()
        return False
