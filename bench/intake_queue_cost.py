"""CPU per web-form submission, at once against in the background, in one process (no HTTP, no other clients):
N submissions to the form «bench» (at once), then their outbox events delivered; N to «bench-bg» through the door
(``submit(queue=True)``), the queue processed by ``process_queued`` until empty, then their events delivered.

    .venv/bin/python bench/intake_queue_cost.py --var /tmp/vk-intake-50k --submissions 200 --rounds 2

It uses a var directory filled by ``bench/intake_bench.py`` (its database and both forms).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST = ["Иван", "Мария", "Пётр", "Анна", "Олег", "Елена", "Сергей", "Ольга", "Дмитрий", "Татьяна"]
LAST = ["Иванов", "Смирнова", "Кузнецов", "Попова", "Васильев", "Петрова", "Соколов", "Михайлова"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var", required=True, help="a var directory filled by bench/intake_bench.py")
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()
    os.environ.update({"VORONKA_VAR_DIR": opts.var, "VORONKA_FORM_RATE_LIMIT": "1000000000",
                       "DJANGO_SETTINGS_MODULE": "voronka.settings"})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from voronka.core.management.commands.worker import sweep
    from voronka.intake import actions
    from voronka.intake.models import WebForm

    sweep()  # what earlier runs left
    n, rnd = opts.submissions, random.Random()
    seed = rnd.randrange(10**6)

    def payloads(tag: int) -> list[dict]:
        return [{"name": f"{rnd.choice(LAST)} {rnd.choice(FIRST)}", "phone": f"+7997{seed % 1000:03d}{tag}{i:03d}",
                 "email": f"cost{seed}.{tag}.{i}@example.ru", "question": "Нужна консультация"} for i in range(n)]

    def ms(seconds: float) -> str:
        return f"{seconds / n * 1000:.1f} ms"

    for r in range(opts.rounds):
        now, bg = WebForm.objects.get(slug="bench"), WebForm.objects.get(slug="bench-bg")
        started = time.perf_counter()
        for posted in payloads(2 * r):
            actions.submit("form", posted, source=now.source, form=now, remote_addr="10.0.0.1", meta={})
        at_once = time.perf_counter() - started
        started = time.perf_counter()
        events_now = sweep()
        sweep_now = time.perf_counter() - started
        started = time.perf_counter()
        for posted in payloads(2 * r + 1):
            actions.submit("form", posted, queue=True, source=bg.source, form=bg, remote_addr="10.0.0.1", meta={})
        door = time.perf_counter() - started
        started = time.perf_counter()
        done = 0
        while batch := actions.process_queued():
            done += batch
        worker = time.perf_counter() - started
        started = time.perf_counter()
        events_bg = sweep()
        sweep_bg = time.perf_counter() - started
        print(f"round {r + 1}: at once {ms(at_once)} + its {events_now} events {ms(sweep_now)}; in the background: "
              f"door {ms(door)}, worker {ms(worker)} ({done} processed) + its {events_bg} events {ms(sweep_bg)}",
              flush=True)


if __name__ == "__main__":
    main()
