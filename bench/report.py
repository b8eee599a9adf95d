"""Turn the JSON results of bench/run.py into docs/benchmarks.md (or bench/results/quick.md).

    python bench/report.py [--quick] [--out PATH]     # rebuild the report from bench/results/*.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

TARGET_RATIO = 0.6
TARGET_FLAT = 0.8
TARGET_BULK = 3000
TARGET_LIST_P95 = 30.0
# peers measured on this kind of machine (issue 2): BottleCRM 0.9 at 100k leads
PEER_SINGLE_100K = 28.0
PEER_LIST_P50_100K = 230.0

DB_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def fmt(v, digits: int = 0) -> str:
    if v is None:
        return "–"
    if isinstance(v, float) and v != v:
        return "–"
    return f"{v:,.{digits}f}".replace(",", "\u202f")  # narrow no-break space as thousands separator


def size_label(size: int) -> str:
    if size == 0:
        return "empty"
    if size >= 1_000_000 and size % 1_000_000 == 0:
        return f"{size // 1_000_000}M"
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def ok_rate(m: dict) -> float:
    """Items per second: successful requests (2xx/3xx) per second times the items per request; for bulk,
    rows that reached the table per second (see bench/run.py, Inner.measure)."""
    if "items_per_s" in m:
        return m["items_per_s"]
    secs = m["duration_us"] / 1e6
    return (m.get("ok_requests", m["requests"]) * m.get("batch", 1)) / secs if secs else 0.0


def measured(level: dict, kind: str) -> dict:
    block = level.get(kind)
    if not isinstance(block, dict) or "error" in block:
        return {}
    return {c: m for c, m in block.items() if isinstance(m, dict) and "error" not in m}


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("**PASS**" if ok else "**FAIL**")


def evaluate(run: dict) -> list[tuple[str, bool | None, str]]:
    """(target, pass?, detail) for one database run."""
    levels = [lv for lv in run.get("levels", []) if "skipped" not in lv]
    rows: list[tuple[str, bool | None, str]] = []

    ratios = []
    for lv in levels:
        base, single = measured(lv, "baseline"), measured(lv, "single")
        for c, m in single.items():
            if c in base and ok_rate(base[c]):
                ratios.append((ok_rate(m) / ok_rate(base[c]), lv["size"], c))
    if ratios:
        worst = min(ratios)
        rows.append((f"single create ≥ {TARGET_RATIO} × baseline (every size, every client count)",
                     worst[0] >= TARGET_RATIO, f"worst {worst[0]:.2f} at {size_label(worst[1])}, {worst[2]} conn."))
    else:
        rows.append((f"single create ≥ {TARGET_RATIO} × baseline", None, "not measured"))

    top = max((lv for lv in levels if lv["size"] > 0 and measured(lv, "single")), key=lambda lv: lv["size"], default=None)
    empty = next((lv for lv in levels if lv["size"] == 0 and measured(lv, "single")), None)
    if top and empty:
        flats = []
        for c, m in measured(top, "single").items():
            e = measured(empty, "single").get(c)
            if e and ok_rate(e):
                flats.append((ok_rate(m) / ok_rate(e), c))
        worst = min(flats)
        rows.append((f"single create at {size_label(top['size'])} within 20% of the empty table",
                     worst[0] >= TARGET_FLAT, f"worst {worst[0]:.2f} of the empty-table figure ({worst[1]} conn.)"))
    else:
        rows.append(("single create at the largest size within 20% of the empty table", None, "not measured"))

    bulks = [(ok_rate(m), lv["size"], c) for lv in levels for c, m in measured(lv, "bulk").items()]
    if bulks:
        worst = min(bulks)
        rows.append((f"bulk ≥ {TARGET_BULK:,} leads/s (every size, every client count)", worst[0] >= TARGET_BULK,
                     f"worst {fmt(worst[0])}/s at {size_label(worst[1])}, {worst[2]} conn.; "
                     f"best {fmt(max(bulks)[0])}/s"))
    else:
        rows.append((f"bulk ≥ {TARGET_BULK:,} leads/s", None, "not measured"))

    top_list = max((lv for lv in levels if lv.get("list")), key=lambda lv: lv["size"], default=None)
    if top_list:
        worst = max(top_list["list"], key=lambda r: r["p95_ms"])
        ok = worst["p95_ms"] <= TARGET_LIST_P95 and not any(r.get("non_200") for r in top_list["list"])
        rows.append((f"list page 1 p95 ≤ {TARGET_LIST_P95:.0f} ms at {size_label(top_list['size'])}", ok,
                     f"worst p95 {worst['p95_ms']:.1f} ms ({worst['name']})"))
    else:
        rows.append((f"list page 1 p95 ≤ {TARGET_LIST_P95:.0f} ms", None, "not measured"))

    at100 = next((lv for lv in levels if lv["size"] == 100_000), None)
    if at100 and measured(at100, "single").get("1"):
        v = ok_rate(measured(at100, "single")["1"])
        rows.append((f"aim: 5 × BottleCRM single create at 100k, 1 client (≥ {5 * PEER_SINGLE_100K:.0f}/s)",
                     v >= 5 * PEER_SINGLE_100K, f"{fmt(v)}/s = {v / PEER_SINGLE_100K:.1f} × BottleCRM"))
    if at100 and at100.get("list"):
        worst = max(r["p50_ms"] for r in at100["list"])
        rows.append((f"aim: 10 × BottleCRM list at 100k (p50 ≤ {PEER_LIST_P50_100K / 10:.0f} ms)",
                     worst <= PEER_LIST_P50_100K / 10, f"worst p50 {worst:.1f} ms = {PEER_LIST_P50_100K / worst:.0f} × faster"))
    return rows


def creates_table(run: dict) -> list[str]:
    out = ["| leads stored | conn. | baseline rows/s | single leads/s | ratio | single p50 / p95 ms | "
           "bulk leads/s | bulk p50 / p95 ms per request | others, cores² |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for lv in run.get("levels", []):
        if "skipped" in lv:
            out.append(f"| {size_label(lv['size'])} | | skipped: {lv['skipped']} | | | | | | |")
            continue
        base, single, bulk = measured(lv, "baseline"), measured(lv, "single"), measured(lv, "bulk")
        for c in run.get("conns", [1, 8]):
            c = str(c)
            b, s, k = base.get(c), single.get(c), bulk.get(c)
            ratio = ok_rate(s) / ok_rate(b) if s and b and ok_rate(b) else None
            stored = f"{size_label(lv['size'])} ({fmt(lv.get('leads_at_start'))})" if c == "1" else ""
            loads = [m.get("other_cpu", m["load_before"]) for m in (b, s, k) if m]
            out.append(
                f"| {stored} | {c} | {fmt(ok_rate(b)) if b else err(lv, 'baseline')} | "
                f"{fmt(ok_rate(s)) if s else err(lv, 'single')} | {fmt(ratio, 2)} | "
                f"{lat(s)} | {fmt(ok_rate(k)) if k else err(lv, 'bulk')} | {lat(k)} | "
                f"{max(loads):.1f} |" if loads else f"| {stored} | {c} | {err(lv, 'baseline')} | | | | | | |")
    return out


def err(lv: dict, kind: str) -> str:
    block = lv.get(kind)
    if isinstance(block, dict) and "error" in block:
        return "error¹"
    return "–"


def lat(m: dict | None) -> str:
    if not m:
        return "–"
    return f"{m['latency_ms']['p50']:.1f} / {m['latency_ms']['p95']:.1f}"


def list_table(run: dict) -> list[str]:
    rows = ["| leads stored | filter | rows in that stage | items on page | p50 ms | p95 ms | p99 ms | max ms | "
            "wrk 1 conn.: req/s, p95 ms |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    any_row = False
    for lv in run.get("levels", []):
        for r in lv.get("list") or []:
            any_row = True
            w = r.get("wrk_c1")
            rows.append(f"| {size_label(lv['size'])} | {r['name']}: `{r['path']}` | {fmt(r['stage_rows'])} | "
                        f"{r.get('items_on_page', '–')} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | "
                        f"{r['max_ms']:.1f} | {fmt(w['rps']) + ', ' + format(w['latency_ms']['p95'], '.1f') if w else '–'} |")
    return rows if any_row else ["Not measured (the list endpoint did not answer, or no leads)."]


def diagnostics_section(run: dict) -> list[str]:
    diag = run.get("diagnostics")
    if not diag:
        return []
    when = run.get("diagnostics_run")
    where = (f"at {fmt(when.get('leads'))} leads, a separate `--diagnostics-only` run on {when.get('date')}, "
             f"commit `{when.get('commit')}`" if when else "at the largest size")
    out = ["", f"#### Queries per request (in-process, `CaptureQueriesContext`, {where})", "",
           "| request | status | queries | COUNT queries | most frequent statements |", "|---|---:|---:|---:|---|"]
    for name, d in diag.items():
        top = "; ".join(f"{s['n']}× `{s['sql'][:90]}`" for s in d["statements"][:3])
        out.append(f"| {name} | {d['status']} | {d['queries']} | {d['count_queries']} | {top.replace('|', '/')} |")
    split = run.get("time_split")
    if split:
        base = split.get("baseline POST", {}).get("ms")
        out += ["", "#### Time per request in-process (Django test client, no HTTP server, no profiler)", "",
                "Wall time per request, and the part spent inside the database driver (sending SQL and waiting for "
                "the answer, measured with `connection.execute_wrapper`); the rest is Python: Django, Ninja, "
                "Voronka's code.", "",
                "| request | ms per request | × baseline | SQL ms | queries | Python ms |", "|---|---:|---:|---:|---:|---:|"]
        for name, t in split.items():
            times = f"{t['ms'] / base:.1f}" if base and "authenticate" not in name else "–"
            out.append(f"| {name} | {t['ms']:.2f} | {times} | {t['sql_ms']:.2f} | {t['queries']} | {t['python_ms']:.2f} |")
    for name, d in diag.items():
        if d.get("plan"):
            out += ["", f"Query plan of the leads query, {name}:", "", "```", d["lead_query"][:1500], "", d["plan"], "```"]
    prof = run.get("profile")
    if prof and "single" in prof:
        for kind, what in (("single", "single creates"), ("bulk", "bulk creates")):
            p = prof.get(kind)
            if not p:
                continue
            out += ["", f"#### cProfile: {p['requests']} {what} through the Django test client (no HTTP server)", "",
                    f"{p['per_request_ms']} ms per request with the profiler's overhead; full listing in `{p['file']}` "
                    "(not committed). Cumulative time of Voronka's functions and of Django's SQL layer:", "",
                    "| function | share of the request | ms per request |", "|---|---:|---:|"]
            out += [f"| `{t['fn']}` | {t['share'] * 100:.0f}% | {t['ms_per_request']} |" for t in p["top"]]
    return out


def machine_table(info: dict, runs: list[dict]) -> list[str]:
    rows = [("Date", info.get("date")), ("Commit", info.get("commit")),
            ("CPU", f"{info.get('nproc')} cores, {info.get('cpu', '?')}"), ("RAM", f"{info.get('ram_gb', '?')} GB"),
            ("OS", info.get("os")), ("Python", info.get("python")), ("Django", info.get("django")),
            ("gunicorn", info.get("gunicorn")), ("django-ninja", info.get("django-ninja")),
            ("psycopg", info.get("psycopg")), ("wrk", info.get("wrk"))]
    for r in runs:
        if r.get("db_version"):
            extra = ""
            if r.get("db_settings"):
                extra = " (" + ", ".join(f"{k}={v}" for k, v in r["db_settings"].items()) + ")"
            cma = r.get("conn_max_age")
            if cma is not None:
                extra += ("; Django CONN_MAX_AGE=0: a new database connection per request" if not cma
                          else f"; Django CONN_MAX_AGE={cma}: persistent connections")
            rows.append((DB_NAMES.get(r["db"], r["db"]), r["db_version"] + extra))
            if r.get("code") and r.get("code") != info.get("commit"):
                rows.append((f"Code measured ({DB_NAMES.get(r['db'], r['db'])})", r["code"]))
    rows.append(("Load average at start", info.get("load_at_start")))
    rows.append(("Wall time of the run", f"{info.get('wall_s', '?')} s"))
    return ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows if v is not None]


def history_line(runs: list[dict], info: dict) -> str:
    parts = []
    for r in runs:
        if "missing" in r or r.get("earlier"):
            continue
        ev = evaluate(r)
        passed = sum(1 for _, ok, _ in ev[:4] if ok)
        lv = [x for x in r.get("levels", []) if "skipped" not in x]
        empty = next((x for x in lv if x["size"] == 0), None)
        top = max(lv, key=lambda x: x["size"], default=None)
        bits = []
        if empty and measured(empty, "single").get("1"):
            bits.append(f"single c1 {fmt(ok_rate(measured(empty, 'single')['1']))}/s empty")
        if top and measured(top, "single").get("1") and top is not empty:
            bits.append(f"{fmt(ok_rate(measured(top, 'single')['1']))}/s at {size_label(top['size'])}")
        bulks = [ok_rate(m) for x in lv for m in measured(x, "bulk").values()]
        if bulks:
            bits.append(f"bulk ≤ {fmt(max(bulks))}/s")
        if top and top.get("list"):
            bits.append(f"list p95 {max(q['p95_ms'] for q in top['list']):.1f} ms")
        parts.append(f"{DB_NAMES.get(r['db'], r['db'])}: {passed}/4 targets ({', '.join(bits)})")
    return f"- {info.get('date')} `{info.get('commit')}`: " + "; ".join(parts) if parts else ""


def read_history(path: Path) -> list[str]:
    if not path.exists():
        return []
    text = path.read_text()
    m = re.search(r"^## History\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return [line for line in m.group(1).splitlines() if line.startswith("- ")] if m else []


def write_report(path: Path, runs: list[dict], info: dict, *, command: str, quick: bool, results_dir: Path,
                 add_history: bool = True) -> None:
    history = read_history(path)
    line = history_line(runs, info) if add_history else ""
    if line:
        history = [line, *history][:50]
    L: list[str] = []
    L += ["# Benchmarks", "",
          ("Quick smoke run (small sizes, short runs): figures are indicative only. " if quick else "") +
          f"Written by `bench/run.py` on {info.get('date')}; the next full run rewrites this file "
          "and keeps the History list at the end.", "",
          "## How to run", "",
          "```", "make bench                          # = scripts/bench.sh: SQLite and PostgreSQL, 0 / 100k / 1M leads, 10 s per figure",
          "scripts/bench.sh --quick            # smoke run: 0 / 10k / 100k leads, 5 s per figure (writes bench/results/quick.md)",
          "scripts/bench.sh --db sqlite        # one database (sqlite | postgres | both)",
          "scripts/bench.sh --sizes 0,100000 --duration 20 --conns 1,4,8",
          "```", "",
          f"This report: `{command}`."
          + (" Server time of the web screens per persona: [benchmarks-screens.md](benchmarks-screens.md) "
             "(`bench/ui_bench.py`)." if (ROOT / "docs" / "benchmarks-screens.md").exists() and not quick else "")
          + (" Reports and dashboards: [benchmarks-analytics.md](benchmarks-analytics.md) (`bench/analytics_bench.py`)."
             if (ROOT / "docs" / "benchmarks-analytics.md").exists() and not quick else ""), "",
          "## What is measured", "",
          "- Each database starts empty: SQLite in a temporary `VORONKA_VAR_DIR` (WAL, the settings of "
          "`voronka/settings.py`), PostgreSQL in a throwaway cluster from `scripts/with-postgres.sh` "
          "(fsync and synchronous_commit off, as that script sets them; persistent connections via `CONN_MAX_AGE`). "
          "`migrate`, a superuser and an API token (`voronka token create`).",
          f"- Server: `gunicorn {runs[0].get('server') or '…'}` — 2 worker processes, one request at a time each, "
          "keep-alive (the sync worker closes every connection, so gthread is used). A kept-alive connection stays "
          "with the worker that accepted it, and which one accepts is a race: `--worker-connections` makes sure both "
          "workers get some of the 8 connections. Even so the 8-connection figures of one setup vary by up to 2× "
          "from run to run (both kinds alike), hence the repeats. Load generator: `wrk -t1` on the same 2 cores "
          "(it takes CPU from the server, equally for every figure).",
          "- **Baseline**: `POST /bench/baseline/` (`voronka.benchsupport`, mounted only with `VORONKA_BENCH=1`) "
          "parses the JSON body and inserts one row: the cheapest write through the same server, middleware and database. "
          "It is measured again at every size, and each ratio divides by the baseline of the same size and client count.",
          "- **Single**: `POST /api/v1/leads` with `{\"title\", \"phones\": [\"+79…\"]}`, a unique title and phone per "
          "request (wrk Lua counters, `bench/wrk/`).",
          f"- **Bulk**: `POST /api/v1/leads/bulk` with {runs[0].get('bulk_batch', 500)} such items per request; leads/s = "
          "rows that reached the table from the start of the run until the requests still in flight at wrk's deadline "
          "had committed (wrk alone would miss those: about latency/duration of the work).",
          "- Figures count only 2xx answers, and the harness checks that the table grew by as many rows. After every run "
          "it waits until the server has finished the requests in flight, so they do not spill into the next figure.",
          f"- Every figure is run {runs[0].get('repeat', 1)}× per size and client count, baseline and single creates "
          "interleaved (baseline, single, baseline, single, …), bulk after them; the best run counts (all runs are in "
          "`bench/results/*.json`).",
          "- **List**: `GET /api/v1/leads?stage=…&order=-created_at&limit=50` for the most and the least populated "
          "stage: 200 sequential requests on one keep-alive connection from a Python client after 20 warm-up "
          "requests (percentiles of the time from sending the request to the last byte: server time plus well under "
          "1 ms of loopback and client), plus a wrk run with one connection.",
          "- Between sizes the table is filled with `voronka generate --leads N` (not timed in the figures; fill time "
          "below), then SQLite's WAL is checkpointed / PostgreSQL is `ANALYZE`d.",
          "- The machine may be shared: the tables show how much CPU other processes took during each figure.", "",
          "## Machine", ""]
    L += machine_table(info, runs)
    L += ["", "## Targets (issue 2)", "",
          "| target | " + " | ".join(DB_NAMES.get(r["db"], r["db"]) for r in runs) + " |",
          "|---|" + "---|" * len(runs)]
    evals = [evaluate(r) if "missing" not in r else None for r in runs]
    names = [name for name, _, _ in (next((e for e in evals if e), []) or [])]
    for i, name in enumerate(names):
        cells = []
        for e in evals:
            if e is None:
                cells.append("not run")
                continue
            match = next((x for x in e if x[0] == name), None) or (e[i] if i < len(e) else None)
            cells.append(f"{verdict(match[1])}: {match[2]}" if match else "–")
        L.append(f"| {name} | " + " | ".join(cells) + " |")
    for r in runs:
        dbn = DB_NAMES.get(r["db"], r["db"])
        L += ["", f"## {dbn}", ""]
        if "missing" in r:
            L.append(f"**Not run:** {r['missing']}.")
            continue
        if r.get("earlier"):
            L.append(f"*From an earlier run ({r.get('started')}, commit `{r.get('commit', '?')}`): "
                     "this run did not include this database.*")
            L.append("")
        L += ["### Creates per second", ""] + creates_table(r)
        L += ["", "² CPU used by processes other than this benchmark's own (this script, wrk, gunicorn, the "
              "PostgreSQL cluster of the run) during the runs shown, the largest of the row: 0 means the figures had "
              "the machine to themselves. Before every run the harness waits up to "
              f"{r.get('quiet_wait', 60):.0f} s for others to drop below {r.get('quiet_cores', 0.3)} cores."]
        L += ["", "### Leads list, page 1 (filter + sort)", ""] + list_table(r)
        if r.get("fills"):
            L += ["", "### Fill (`voronka generate --leads N`)", "",
                  "| from | to | seconds | leads/s |", "|---:|---:|---:|---:|"]
            L += [f"| {fmt(f['from'])} | {fmt(f['to'])} | {f['seconds']} | {fmt(f['leads_per_s'])} |" for f in r["fills"]]
        L += diagnostics_section(r)
        if r.get("problems"):
            L += ["", "### Problems seen during the run", ""] + [f"- {p}" for p in r["problems"]]
        if any(isinstance(lv.get(k), dict) and "error" in lv[k] for lv in r.get("levels", [])
               for k in ("baseline", "single", "bulk")):
            L += ["", "¹ the preflight request failed; see Problems."]
    L += ["", "## History", ""] + (history or ["- (none yet)"]) + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(L))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out")
    opts = p.parse_args()
    prefix = "quick-" if opts.quick else ""
    runs = [json.loads((RESULTS / f"{prefix}{db}.json").read_text()) for db in ("sqlite", "postgres")
            if (RESULTS / f"{prefix}{db}.json").exists()]
    if not runs:
        print("no results in bench/results", file=sys.stderr)
        return 1
    info = runs[0].get("machine") or {"date": time.strftime("%Y-%m-%d %H:%M %Z")}
    out = Path(opts.out) if opts.out else (RESULTS / "quick.md" if opts.quick else ROOT / "docs" / "benchmarks.md")
    command = next((r["command"] for r in runs if r.get("command")), "make bench")
    write_report(out, runs, info, command=command, quick=opts.quick, results_dir=RESULTS, add_history=False)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
