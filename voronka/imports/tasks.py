"""Background task of imports (Django Tasks; run by ``voronka worker``)."""

from __future__ import annotations

from django_tasks import task


@task()
def run_import(job_id: int) -> None:
    from . import runner

    runner.run(job_id)
