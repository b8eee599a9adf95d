from __future__ import annotations

import pytest

from voronka.core import clock


@pytest.fixture
def drive():
    """Run the worker once, in this process: deliver events, fire due timers, execute due runs, until idle."""
    from voronka.core.management.commands.worker import drain

    def run():
        return drain()

    return run


@pytest.fixture(autouse=True)
def _real_clock():
    yield
    clock.freeze(None)


@pytest.fixture
def stages(lead_pipeline):
    return {s.code: s for s in lead_pipeline.stages.all()}


@pytest.fixture
def robot(admin, stages):
    from voronka.automation.actions import create_robot

    def make(action, params, stage="new", **extra):
        return create_robot(admin, stage=stages[stage].pk, action=action, params=params, **extra)

    return make


@pytest.fixture(autouse=True)
def _english():
    """These tests assert the English texts; the Russian ones are checked by the translation tests."""
    from django.utils import translation

    with translation.override("en"):
        yield
