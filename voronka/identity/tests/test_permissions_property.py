"""Property test: what each user can list is exactly the set computed independently from the rules."""

from __future__ import annotations

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voronka.core import policies
from voronka.core.actor import Actor
from voronka.core.selectors import records_visible_to
from voronka.identity.models import Department, Role, RoleAssignment, RolePermission, Scope, User
from voronka.identity.permissions import RoleEngine, rights_changed

pytestmark = pytest.mark.django_db

# department tree: 0 root; 1 and 2 under root; 3 under 1
PARENT = {0: None, 1: 0, 2: 0, 3: 1}
SCOPES = [int(s) for s in Scope.values]


def descendants(d: int) -> set[int]:
    out = {d}
    changed = True
    while changed:
        changed = False
        for child, parent in PARENT.items():
            if parent in out and child not in out:
                out.add(child)
                changed = True
    return out


def ancestors(d: int) -> set[int]:
    out, node = set(), PARENT[d]
    while node is not None:
        out.add(node)
        node = PARENT[node]
    return out


world = st.fixed_dictionaries({
    "user_depts": st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=4, max_size=4),
    "deals": st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 1), st.booleans()),
                      min_size=1, max_size=10),
    "roles": st.lists(st.dictionaries(st.sampled_from([None, 0, 1]), st.sampled_from(SCOPES), max_size=3),
                      min_size=1, max_size=2),
    "assignments": st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["user", "dept"]), st.integers(0, 3),
                                      st.booleans()), max_size=4),
})


def unique_assignments(assignments):
    """One assignment per (role, user) or (role, department): the first one given wins, as in the database."""
    seen, result = set(), []
    for role_index, kind, target, with_sub in assignments:
        if (role_index, kind, target) not in seen:
            seen.add((role_index, kind, target))
            result.append((role_index, kind, target, with_sub))
    return result


def expected(spec, user_index: int, deal_rows) -> set[int]:
    dept = spec["user_depts"][user_index]
    scopes = {0: 0, 1: 0}
    for role_index, kind, target, with_sub in unique_assignments(spec["assignments"]):
        if role_index >= len(spec["roles"]):
            continue
        applies = (kind == "user" and target == user_index) or (
            kind == "dept" and dept is not None and (target == dept or (with_sub and target in ancestors(dept))))
        if not applies:
            continue
        for pipeline, scope in spec["roles"][role_index].items():
            for p in (0, 1):
                if pipeline is None or pipeline == p:
                    scopes[p] = max(scopes[p], scope)
    visible = set()
    for pk, (owner, pipeline, is_open) in deal_rows:
        scope = scopes[pipeline]
        owner_dept = spec["user_depts"][owner] if owner is not None else None
        mine = owner == user_index
        ok = scope >= Scope.ALL or (scope >= Scope.OPEN and is_open) or (scope >= Scope.OWN and mine) or (
            scope >= Scope.SUBDEPARTMENTS and dept is not None and owner_dept is not None
            and owner_dept in descendants(dept)) or (
            scope >= Scope.DEPARTMENT and dept is not None and owner_dept == dept)
        if ok:
            visible.add(pk)
    return visible


@pytest.fixture
def base(admin, deal_pipelines):
    previous = policies._engine
    policies.install(RoleEngine())
    yield deal_pipelines
    policies.install(previous)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=world)
def test_listing_matches_the_rules(base, spec):
    from voronka.deals.models import Deal

    pipelines = [base["sales"], base["repeat"]]
    with transaction.atomic():
        depts = {}
        for d in sorted(PARENT):
            depts[d] = Department.objects.create(name=f"d{d}", parent=depts.get(PARENT[d]))
        users = [User.objects.create_user(f"u{i}", password="x",
                                          department=depts[d] if d is not None else None)
                 for i, d in enumerate(spec["user_depts"])]
        roles = []
        for i, rights in enumerate(spec["roles"]):
            role = Role.objects.create(code=f"r{i}", name=f"r{i}")
            RolePermission.objects.bulk_create([
                RolePermission(role=role, entity_type_id=2, perm="read", scope=scope,
                               pipeline=pipelines[p] if p is not None else None) for p, scope in rights.items()])
            roles.append(role)
        for role_index, kind, target, with_sub in spec["assignments"]:
            if role_index >= len(roles):
                continue
            if kind == "user":
                RoleAssignment.objects.get_or_create(role=roles[role_index], user=users[target])
            else:
                RoleAssignment.objects.get_or_create(role=roles[role_index], department=depts[target],
                                                     defaults={"with_subdepartments": with_sub})
        rights_changed()
        deal_rows = []
        for owner, p, is_open in spec["deals"]:
            stage = pipelines[p].stages.order_by("sort").first()
            deal = Deal.objects.create(title="d", pipeline=pipelines[p], stage=stage,
                                       responsible=users[owner] if owner is not None else None, is_open=is_open)
            deal_rows.append((deal.pk, (owner, p, is_open)))
        for index, user in enumerate(users):
            got = set(records_visible_to(Actor.for_user(user, "test"), 2).values_list("id", flat=True))
            assert got == expected(spec, index, deal_rows), (index, spec)
            # the object-level check agrees with the list
            engine = policies._engine
            for pk, _row in deal_rows:
                deal = Deal.objects.get(pk=pk)
                assert engine.can(Actor.for_user(user, "test"), "read", 2, deal) == (pk in got)
        transaction.set_rollback(True)
