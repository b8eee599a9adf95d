from voronka.intake.tests.conftest import queue, users  # noqa: F401
