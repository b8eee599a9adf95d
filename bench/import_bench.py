"""Import benchmark: rows per second of a CSV / XLSX contacts import against M stored contacts, with matching
(chunked, the importer's way), without matching (``always_create``), and with row-by-row matching (the same
lookups for one row at a time: the A/B of the chunked lookup), in one process, interleaved.

    .venv/bin/python bench/import_bench.py --rows 10000 --contacts 100000                        # SQLite
    scripts/with-postgres.sh .venv/bin/python bench/import_bench.py --rows 10000 --contacts 100000  # PostgreSQL
    .venv/bin/python bench/import_bench.py --rows 2000 --contacts 20000 --formats csv              # a quick try

The database is filled with ``voronka generate --contacts M`` (bulk rows, a phone per contact, an e-mail for
many) and ``voronka intake reindex``. The file has the columns of a typical client list — full name, phone,
e-mail, company, INN — and ``--match-share`` of its rows (default 0.5) carry the phone of a stored contact
(typed differently: «8 (916) 123-45-67»); the others are new people. Companies come from a pool of
rows/20 INNs, so most rows match a company created earlier in the same file.

Each run is a real job (``imports.actions.create_job`` + ``imports.runner.run``: reading, parsing, matching,
writing through ``recordkit.create_many``, the job's progress and report rows) as the superuser. Figures: rows/s,
SQL statements per row (counted, not timed: load does not change them), and the process's peak RSS.
Every run adds its rows to the database (a few % of M), which slightly favours the first runs.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
FIRST = ["Иван", "Мария", "Пётр", "Анна", "Олег", "Елена", "Сергей", "Ольга", "Дмитрий", "Татьяна"]
LAST = ["Иванов", "Смирнова", "Кузнецов", "Попова", "Васильев", "Петрова", "Соколов", "Михайлова"]
HEADERS = ["ФИО", "Телефон", "E-mail", "Компания", "ИНН"]


def log(text: str) -> None:
    print(f"[import-bench {time.strftime('%H:%M:%S', time.gmtime())}] {text}", file=sys.stderr, flush=True)


def voronka(env: dict, *args: str) -> None:
    started = time.perf_counter()
    subprocess.run([str(BIN / "voronka"), *args], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    log(f"voronka {' '.join(args)}: {time.perf_counter() - started:.1f} s")


def make_rows(n: int, share: float, seed: int) -> list[list[str]]:
    """The file's rows: a share of them carry a stored contact's phone; new ones get new phones and e-mails."""
    from voronka.parties.models import Communication

    rnd = random.Random(seed)
    phones = list(Communication.objects.filter(entity_type_id=3, kind="phone").order_by("?")
                  .values_list("normalized", flat=True)[:max(1, int(n * share))])
    rows = []
    for i in range(n):
        name = f"{rnd.choice(LAST)} {rnd.choice(FIRST)}"
        company = rnd.randrange(max(1, n // 20))
        inn = f"77{seed % 100:02d}{company:06d}"
        if i % 2 == 0 and phones and rnd.random() < share * 2:
            digits = phones.pop()[2:]
            phone, email = f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}", ""
        else:
            phone, email = f"+7 990 {seed % 100:02d}{i:05d}", f"import{seed}.{i}@example.ru"
        rows.append([name, phone, email, f"ООО Клиент {company}", inn])
    return rows


def file_bytes(rows: list[list[str]], fmt: str) -> bytes:
    if fmt == "csv":
        import csv

        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=";")
        writer.writerow(HEADERS)
        writer.writerows(rows)
        return buffer.getvalue().encode("utf-8")
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(HEADERS)
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, in MB (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def reset_peak() -> bool:
    """Reset the process's peak RSS (VmHWM) so that each run's own peak can be read (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class Counter:
    def __init__(self):
        self.n = 0

    def __call__(self, execute, sql, params, many, context):
        self.n += 1
        return execute(sql, params, many, context)


def one_run(actor, rows: list[list[str]], fmt: str, mode: str, batch: int) -> dict:
    from django.db import connection

    from voronka.imports import actions, engine, runner

    label = {"match_or_create": "chunked matching", "always_create": "no matching", "per_row": "row-by-row matching"}
    content = file_bytes(rows, fmt)
    job = actions.create_job(actor, file=io.BytesIO(content), file_name=f"bench.{fmt}", type="contacts",
                             mode="match_or_create" if mode == "per_row" else mode, options={"batch_size": batch})
    actions.start(actor, job)
    chunked = engine.Importer.plan_many
    if mode == "per_row":  # the same lookups, one row at a time
        engine.Importer.plan_many = lambda self, chunk: [p for row in chunk for p in chunked(self, [row])]
    counter = Counter()
    before = rss_mb("VmRSS")
    peak_known = reset_peak()
    try:
        started = time.perf_counter()
        with connection.execute_wrapper(counter):
            job = runner.run(job.pk, actor=actor)
        seconds = time.perf_counter() - started
    finally:
        engine.Importer.plan_many = chunked
    assert job.status == "done", job.error
    peak = rss_mb("VmHWM") if peak_known else 0.0
    anon, mapped = rss_mb("RssAnon"), rss_mb("RssFile")  # the heap vs file pages (SQLite's mmap, libraries)
    result = {"format": fmt, "mode": label[mode], "rows": len(rows), "seconds": seconds,
              "rows_per_s": len(rows) / seconds, "queries_per_row": counter.n / len(rows),
              "created": job.created_count, "matched": job.matched_count, "rejected": job.rejected_count,
              "stats": job.stats, "bytes": len(content),
              "rss_before_mb": before, "rss_peak_mb": peak, "rss_growth_mb": max(0.0, peak - before),
              "rss_anon_mb": anon, "rss_file_mb": mapped}
    log(f"{fmt} {label[mode]}: {len(rows)} rows in {seconds:.1f} s = {result['rows_per_s']:.0f} rows/s, "
        f"{result['queries_per_row']:.2f} queries/row, created {job.created_count}, matched {job.matched_count}, "
        f"rejected {job.rejected_count}, {job.stats}; RSS {before:.0f} MB before, peak {peak:.0f} MB during the run, "
        f"after it {anon:.0f} MB heap + {mapped:.0f} MB file pages")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000, help="rows per file (default 10,000)")
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts stored (default 100,000)")
    parser.add_argument("--formats", default="csv,xlsx", help="csv, xlsx or both (default csv,xlsx)")
    parser.add_argument("--match-share", type=float, default=0.5, help="rows matching a stored contact (0.5)")
    parser.add_argument("--per-row-rows", type=int, default=2000,
                        help="rows of the row-by-row run (it is slow; default 2,000; 0 skips it)")
    parser.add_argument("--modes", default="match_or_create,always_create,per_row",
                        help="runs per format: match_or_create, always_create, per_row (default all three)")
    parser.add_argument("--batch", type=int, default=0, help="rows per chunk (default: the importer's)")
    parser.add_argument("--var", default="", help="var directory to use (kept; default: a temporary one)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    opts = parser.parse_args()
    var = Path(opts.var) if opts.var else Path(tempfile.mkdtemp(prefix="vk-import-bench-"))
    env = {**os.environ, "VORONKA_VAR_DIR": str(var), "VORONKA_BENCH": "1",
           "DJANGO_SETTINGS_MODULE": "voronka.settings", "PYTHONPATH": str(ROOT)}
    os.environ.update({k: env[k] for k in ("VORONKA_VAR_DIR", "VORONKA_BENCH", "DJANGO_SETTINGS_MODULE")})
    database = "PostgreSQL" if os.environ.get("VORONKA_DATABASE_URL", "").startswith("postgres") else "SQLite"
    log(f"{database}, var {var}, {opts.contacts:,} contacts, {opts.rows:,} rows")
    figures: dict = {"database": database, "runs": []}
    try:
        voronka(env, "migrate", "--noinput", "-v", "0")
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()
        from voronka.core.actor import Actor
        from voronka.identity.models import User
        from voronka.imports import runner
        from voronka.parties.models import Contact

        have = Contact.objects.count()
        if have < opts.contacts:
            voronka(env, "generate", "--contacts", str(opts.contacts - have),
                    "--companies", str(max(1, (opts.contacts - have) // 10)), "--no-progress")
            voronka(env, "intake", "reindex")
        user = User.objects.filter(username="import-bench").first() or User.objects.create_superuser(
            "import-bench", "import-bench@example.ru", None)
        actor = Actor.for_user(user, "cli")
        figures["contacts"] = Contact.objects.count()
        batch = opts.batch or runner.BATCH
        figures["batch"] = batch
        seed = int(time.time()) % 10_000
        for fmt in [f.strip() for f in opts.formats.split(",") if f.strip()]:
            # interleaved: with matching, without, row by row (on a sample), each on a file of its own
            for mode in ("match_or_create", "always_create", "per_row"):
                if mode not in opts.modes.split(",") or (mode == "per_row" and not opts.per_row_rows):
                    continue
                seed += 1
                rows = make_rows(opts.rows, opts.match_share, seed)
                if mode == "per_row":
                    rows = rows[:opts.per_row_rows]
                figures["runs"].append(one_run(actor, rows, fmt, mode, batch))
    finally:
        if not opts.var:
            shutil.rmtree(var, ignore_errors=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n### Import of {opts.rows:,} rows at {figures['contacts']:,} contacts ({database}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}, chunks of {figures['batch']}, peak RSS {peak:.0f} MB)\n")
    print("| file | matching | rows | rows/s | queries/row | created | matched | companies created / matched "
          "| RSS before / peak during the run, MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in figures["runs"]:
        company = run["stats"].get("company", {})
        print(f"| {run['format']} | {run['mode']} | {run['rows']:,} | {run['rows_per_s']:.0f} | "
              f"{run['queries_per_row']:.2f} | {run['created']:,} | {run['matched']:,} | "
              f"{company.get('created', 0):,} / {company.get('matched', 0):,} | "
              f"{run['rss_before_mb']:.0f} / {run['rss_peak_mb']:.0f} |")
    if opts.json:
        Path(opts.json).write_text(json.dumps(figures, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
