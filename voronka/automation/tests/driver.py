"""Drives a separate Voronka database from a test, in a subprocess: ``python -m voronka.automation.tests.driver
COMMAND JSON``. It prints one JSON line. The tests that start a real ``voronka worker`` use it, because the
worker cannot see the test's own (uncommitted, possibly in-memory) database.
"""

from __future__ import annotations

import json
import os
import sys


def setup_e2e() -> dict:
    from voronka.automation.actions import create_robot, set_stage_limit
    from voronka.core.actor import Actor
    from voronka.identity.models import Department, Role, RoleAssignment, User
    from voronka.pipelines.actions import create_pipeline

    admin = User.objects.create_superuser("admin", "admin@example.ru", "x", first_name="Anna", last_name="Admin")
    actor = Actor.for_user(admin, "test")
    owner = User.objects.create_user("owner", "owner@example.ru", "x", first_name="Oleg", last_name="Owner",
                                     language="en")
    dept = Department.objects.create(name="Call centre", head=owner)
    operator = User.objects.create_user("op", "op@example.ru", "x", first_name="Ira", last_name="Zvonkova",
                                        department=dept, language="en")
    RoleAssignment.objects.create(role=Role.objects.get(code="call_centre_operator"), user=operator)
    RoleAssignment.objects.create(role=Role.objects.get(code="administrator"), user=owner)
    pipeline = create_pipeline(actor, entity_type_id=1, name="Leads", code="leads", stages=[
        {"name": "Not processed", "code": "new"}, {"name": "Assigned", "code": "assigned"},
        {"name": "Burst", "code": "burst"}, {"name": "Converted", "code": "won", "semantics": "success"}])
    stages = {s.code: s.pk for s in pipeline.stages.all()}
    create_robot(actor, stage=stages["new"], name="Call the client", action="create_task",
                 params={"title": "Call {title}", "deadline": {"amount": 1, "unit": "hours"}})
    set_stage_limit(actor, stages["new"], amount=3, unit="hours",
                    steps=[{"after": {"amount": 0, "unit": "minutes"}, "notify": ["head"]}])
    create_robot(actor, stage=stages["burst"], name="Burst task", action="create_task", params={"title": "Burst {title}"})
    create_robot(actor, stage=stages["burst"], name="Burst comment", action="comment", params={"text": "Seen {title}"},
                 order=200)
    return {"operator": operator.pk, "owner": owner.pk, "stages": stages}


def create_lead(title: str, stage: str = "new") -> dict:
    from voronka.core.actor import Actor
    from voronka.identity.models import User
    from voronka.leads.actions import create_lead as action

    operator = User.objects.get(username="op")
    lead = action(Actor.system("test", entry_point="test"), title=title, responsible=operator.pk, stage=stage)
    return {"id": lead.pk, "entered": lead.stage_changed_at.isoformat()}


def burst(count: int) -> dict:
    """``count`` leads in the Burst stage, in one bulk write; their runs are planned by one outbox sweep here
    (as the worker's sweep would), so the test's worker starts with every run pending."""
    from voronka.automation.models import Run
    from voronka.core import outbox
    from voronka.core.actor import Actor
    from voronka.identity.models import User
    from voronka.leads.actions import create_leads

    operator = User.objects.get(username="op")
    results = create_leads(Actor.system("test", entry_point="test"),
                           [{"title": f"B{i}", "stage": "burst", "responsible": operator.pk} for i in range(count)])
    assert all(r.ok for r in results), [r.error.as_dict() for r in results if not r.ok][:3]
    while outbox.dispatch_pending():
        pass
    return {"leads": count, "runs": Run.objects.count()}


def overdue_task(title: str, deadline: str, recurrence: str = "") -> dict:
    """Escalate overdue tasks to their responsible, and give the operator a task due at ``deadline``."""
    from voronka.activities.actions import create_task
    from voronka.automation.actions import set_task_escalation
    from voronka.core.actor import Actor
    from voronka.identity.models import User

    admin = Actor.for_user(User.objects.get(username="admin"), "test")
    set_task_escalation(admin, steps=[{"notify": ["responsible"]}])
    operator = User.objects.get(username="op")
    task = create_task(admin, title=title, deadline=deadline, responsible=operator.pk, recurrence=recurrence)
    return {"id": task.pk}


def complete_task(task: int) -> dict:
    from voronka.activities.actions import complete_task as action
    from voronka.core.actor import Actor

    action(Actor.system("test", entry_point="test"), task)
    return {"id": task}


COMMANDS = {"setup_e2e": setup_e2e, "create_lead": create_lead, "burst": burst, "overdue_task": overdue_task,
            "complete_task": complete_task}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voronka.settings")
    import django

    django.setup()
    command, args = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    print(json.dumps(COMMANDS[command](**args)))


if __name__ == "__main__":
    main()
