"""Property-based run of schemathesis over our own OpenAPI: no request, valid or not, may end in a 5xx,
and every answer conforms to the schema (status codes, content types, response bodies, auth).
Two checks stay off because they test business rules no schema can state: a well-formed request may
name a stage that does not exist (a 422 is right), and a bulk call answers malformed items one by one
with 200 rather than failing the whole call.

Bounded in time: a fixed seed, few examples per operation in the fuzzing phase, the coverage phase in
negative mode only (boundaries, wrong types, unexpected methods), no stateful phase. The schema is read
from the app in process (WSGI) when the module is collected. Every operation runs against a database
with one record of each kind, and a generated id that is well-formed is pointed at the existing record,
so bodies are fuzzed against real records rather than only answered with 404.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from voronka.wsgi import application

MAX_EXAMPLES = 6

config = schemathesis.Config.from_dict({
    "seed": 20260101,
    "generation": {"max-examples": MAX_EXAMPLES},
    "phases": {"stateful": {"enabled": False}, "coverage": {"generation": {"mode": "negative"}}},
})
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application, config=config)


@pytest.fixture
def existing(admin, admin_user, lead_pipeline, deal_pipelines) -> dict[str, int]:
    from voronka.activities.actions import create_task
    from voronka.automation.actions import create_robot, create_trigger
    from voronka.calendars.actions import add_absence
    from voronka.core.management.commands.worker import drain
    from voronka.deals.actions import create_deal
    from voronka.items.actions import create_item, create_row, create_type
    from voronka.leads.actions import create_lead
    from voronka.links.actions import link
    from voronka.parties.actions import create_company, create_contact
    from voronka.pipelines.actions import create_stage

    create_type(admin, name="Production order", code="production")
    create_type(admin, kind="list", name="Licence", code="licences")
    robot = create_robot(admin, stage=lead_pipeline.stages.order_by("sort").first().pk, action="comment",
                         params={"text": "Новая заявка {title}"})
    lead = create_lead(admin, title="Заявка", phones=["+79161234567"])
    drain()
    return {
        "robots": robot.pk,
        "runs": robot.runs.first().pk,
        "leads": lead.pk,
        "deals": create_deal(admin, title="Сделка").pk,
        "contacts": create_contact(admin, first_name="Иван", emails=["ivan@example.ru"]).pk,
        "companies": create_company(admin, name="ООО Ромашка").pk,
        "tasks": create_task(admin, title="Позвонить", entity_type_id=1, entity_id=lead.pk).pk,
        "links": link(admin, (1, lead.pk), (2, create_deal(admin, title="Сделка по заявке").pk)).pk,
        "pipelines": lead_pipeline.pk,
        "stages": create_stage(admin, lead_pipeline.pk, name="Пустой этап").pk,
        "users": admin_user.pk,
        "{type}": create_item(admin, "production", title="Кухня").pk,
        "rows": create_row(admin, "licences", title="1С").pk,
        "triggers": create_trigger(admin, stage=lead_pipeline.stages.order_by("sort").first().pk, kind="call").pk,
        "absences": add_absence(admin, admin_user.pk, starts_on="2026-12-01", ends_on="2026-12-02").pk,
    }


@pytest.fixture
def keep_connection():
    """Requests go straight to the WSGI app, not through Django's test client: like the client, keep Django
    from closing the database connection after each request, which would end the test's transaction."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _steer(case, existing: dict[str, int]) -> None:
    if isinstance(case.path_parameters, dict) and isinstance(case.path_parameters.get("type"), str) \
            and case.path_parameters["type"].isalpha():  # a real smart process or list (kept invalid otherwise)
        case.path_parameters["type"] = "licences" if "/lists/" in case.operation.path else "production"
    value = case.path_parameters.get("id") if isinstance(case.path_parameters, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        parts = case.operation.path.split("/")
        case.path_parameters["id"] = existing[parts[parts.index("{id}") - 1]]


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_server_errors(case, admin_token, existing, keep_connection):
    _steer(case, existing)
    case.call_and_validate(headers={"Authorization": f"Bearer {admin_token}"},
                           excluded_checks=[checks.positive_data_acceptance, checks.negative_data_rejection])
