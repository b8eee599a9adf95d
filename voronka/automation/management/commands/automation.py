"""``voronka automation export PIPELINE [-o FILE]`` and ``voronka automation import FILE``.

PIPELINE is ``code`` (leads first, then deals) or ``entity:code`` (``deal:sales``) or a pipeline id.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from voronka.core import entity_types
from voronka.core.actor import Actor


def _actor() -> Actor:
    return Actor.system("cli:automation", entry_point="cli")


def _pipeline(ref: str):
    from voronka.pipelines.models import Pipeline

    if ref.isdigit():
        found = list(Pipeline.objects.filter(pk=int(ref)))
    elif ":" in ref:
        kind, code = ref.split(":", 1)
        try:
            info = entity_types.by_code(kind)
        except LookupError:
            raise CommandError(f"Unknown kind of record «{kind}».") from None
        found = list(Pipeline.objects.filter(entity_type_id=info.id, code=code))
    else:
        found = list(Pipeline.objects.filter(code=ref).order_by("entity_type_id"))
    if not found:
        raise CommandError(f"No pipeline «{ref}». Give its code, kind:code (deal:sales) or id.")
    if len(found) > 1:
        raise CommandError(f"Several pipelines are called «{ref}»; give kind:code, e.g. deal:{ref}.")
    return found[0]


class Command(BaseCommand):
    help = "Export or import a pipeline's stages, robots and time limits as YAML (docs/automation.md)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="what", required=True)
        export = sub.add_parser("export", help="Print a pipeline's automation as YAML.")
        export.add_argument("pipeline", help="code, kind:code (deal:sales) or id")
        export.add_argument("-o", "--output", help="write to this file instead of the standard output")
        imp = sub.add_parser("import", help="Create or update a pipeline's stages, robots and limits from YAML.")
        imp.add_argument("file", help="the YAML file, or - for the standard input")

    def handle(self, *args, **options):
        from voronka.automation.config_io import ImportFailed, export_pipeline, import_document

        if options["what"] == "export":
            text = export_pipeline(_pipeline(options["pipeline"]))
            if options.get("output"):
                Path(options["output"]).write_text(text, encoding="utf-8")
                self.stdout.write(f"written to {options['output']}")
            else:
                self.stdout.write(text, ending="")
            return
        path = options["file"]
        try:
            text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        try:
            summary = import_document(_actor(), text)
        except ImportFailed as exc:
            raise CommandError(f"{path}: {exc} Nothing was changed.") from None
        self.stdout.write(f"imported pipeline «{summary['pipeline']}»: {summary['stages']} stage(s), "
                          f"{summary['robots']} robot(s), {summary['triggers']} trigger(s), {summary['limits']} time limit(s)")
