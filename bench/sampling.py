"""A statistical profiler for the bench tools (``write_profile.py --sample``, ``intake_profile.py --sample``): the
stack is sampled every ``interval`` seconds of this process's CPU time (``ITIMER_PROF``). Unlike cProfile it adds
nothing per call, so cheap functions called often are not inflated; time spent in C (SQLite, JSON, rapidfuzz)
counts for the Python function that called it."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable


def code_name(code) -> str:
    """``path:line(function)`` of a code object, the path from the package (site-packages, the stdlib, the repo)."""
    path = code.co_filename
    for marker in ("site-packages/", "/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/python3.":  # the stdlib: drop the version's rest ("11/")
                path = path.split("/", 1)[-1]
            break
    else:
        path = re.sub(r"^/work/[^/]+/", "", path)
    return f"{path}:{code.co_firstlineno}({code.co_name})"


def run_sampled(work: Callable[[], None], on_tick: Callable, interval: float = 0.0002) -> float:
    """Run ``work`` with ``on_tick(signum, frame)`` called at every sample; returns the CPU seconds it took."""
    previous = signal.signal(signal.SIGPROF, on_tick)
    started = time.process_time()
    signal.setitimer(signal.ITIMER_PROF, interval, interval)
    try:
        work()
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, previous)
    return time.process_time() - started


def on_stack(frame, names: Callable, *counters) -> None:
    """Count each function on the stack once in every one of ``counters`` (inclusive time)."""
    seen = set()
    while frame is not None:
        code = frame.f_code
        if code not in seen:
            seen.add(code)
            name = names(code)
            for counter in counters:
                counter[name] += 1
        frame = frame.f_back


def print_counters(counters: list[tuple[str, object]], per_sample: float, unit: str, top: int) -> None:
    for title, counter in counters:
        print(f"  by {title} (µs per {unit}):")
        for key, count in counter.most_common(top):
            print(f"    {count * per_sample:8.1f}  {key}")
