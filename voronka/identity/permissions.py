"""Role-based rights per entity type and pipeline, with own / department / sub-departments / open / all scopes.

The engine answers two questions for ``voronka.core.policies``:

- ``can(actor, perm, entity_type_id, obj, pipeline_id)`` — may the actor do ``perm`` (on ``obj``)?
- ``visible(actor, entity_type_id, qs)`` — narrow a queryset to what the actor may read.

Both are computed from the same grants, so a list never shows what a card would refuse.
Rules:
- the system actor may do everything (it acts for rules an administrator configured; notifications
  it sends are still filtered by the recipients' rights);
- inactive users and unknown actors nothing; superusers everything;
- a user's rights are the union of the roles given to them directly and through their department
  (and its parents, for assignments made "with sub-departments");
- the widest scope wins; a right given for every pipeline (``pipeline=None``) applies to each pipeline;
- observers of a record may read it;
- a token limited to scopes may do only what its scopes name ("read", "write", "export").
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from django.db.models import Q

from voronka.core import entity_types
from voronka.core.actor import Actor

from .models import Department, RoleAssignment, RolePermission, Scope, User

WRITE_PERMS = {"add", "update", "delete", "import"}
SETTINGS_PREFIX = "settings"

_version = {"n": 0}
_lock = threading.Lock()

# Grants are kept per process, keyed by user and checked against the database's rights version
# (``ConfigVersion`` row «rights», a random token bumped in the transaction of every change to roles,
# assignments, users or departments): one indexed read per request instead of ~9 queries. The TTL is a
# safety net for writes that bypass the actions (a raw SQL fix by an administrator).
RIGHTS_KEY = "rights"
PROCESS_TTL = 60.0
_process: dict[int, tuple[int, tuple, float, Grants]] = {}


def forget_cached() -> None:
    """Drop this process's grants (after a commit; the version row tells the other processes)."""
    with _lock:
        _version["n"] += 1
        _process.clear()


def rights_changed() -> None:
    """Called inside the transaction of every action that changes roles, assignments, users or departments."""
    from voronka.core import config_cache

    config_cache.bump(RIGHTS_KEY)
    forget_cached()


@dataclass
class Grants:
    user_id: int
    superuser: bool = False
    # (entity_type_id, perm) -> {pipeline_id or None: scope}
    rights: dict[tuple[int, str], dict[int | None, int]] = field(default_factory=dict)
    settings: set[str] = field(default_factory=set)
    role_ids: frozenset[int] = frozenset()
    menu_hidden: frozenset[str] = frozenset()  # hidden by every role the user has
    department_users: frozenset[int] = frozenset()
    subdepartment_users: frozenset[int] = frozenset()

    def scope(self, entity_type_id: int, perm: str, pipeline_id: int | None) -> int:
        by_pipeline = self.rights.get((entity_type_id, perm), {})
        return max(by_pipeline.get(None, Scope.NONE), by_pipeline.get(pipeline_id, Scope.NONE) if pipeline_id else 0)

    def responsible_ids(self, scope: int) -> frozenset[int] | None:
        """Whose records the scope covers; None means everyone's."""
        if scope >= Scope.ALL:
            return None
        if scope >= Scope.SUBDEPARTMENTS:
            return self.subdepartment_users | {self.user_id}
        if scope >= Scope.DEPARTMENT:
            return self.department_users | {self.user_id}
        if scope >= Scope.OWN:
            return frozenset({self.user_id})
        return frozenset()


def _department_ids(user: User) -> tuple[set[int], set[int]]:
    """(the user's department, it and every sub-department)."""
    if not user.department_id:
        return set(), set()
    dept = Department.objects.get(pk=user.department_id)
    return {dept.pk}, dept.descendant_ids()


def compute_grants(user: User) -> Grants:
    grants = Grants(user_id=user.pk, superuser=user.is_superuser)
    if user.is_superuser:
        return grants
    own_depts, sub_depts = _department_ids(user)
    ancestors = {d.pk for d in Department.objects.get(pk=user.department_id).ancestors()} if user.department_id else set()
    assignment_q = Q(user_id=user.pk)
    if own_depts:
        assignment_q |= Q(department_id__in=own_depts) | Q(department_id__in=ancestors, with_subdepartments=True)
    role_ids = set(RoleAssignment.objects.filter(assignment_q).values_list("role_id", flat=True))
    grants.role_ids = frozenset(role_ids)
    if not role_ids:
        return grants
    for perm in RolePermission.objects.filter(role_id__in=role_ids):
        slot = grants.rights.setdefault((perm.entity_type_id, perm.perm), {})
        slot[perm.pipeline_id] = max(slot.get(perm.pipeline_id, Scope.NONE), perm.scope)
    from .models import Role

    hidden_sets = []
    for areas, hidden in Role.objects.filter(pk__in=role_ids).values_list("settings_rights", "menu_hidden"):
        grants.settings.update(areas or [])
        hidden_sets.append(set(hidden or []))
    grants.menu_hidden = frozenset(set.intersection(*hidden_sets)) if hidden_sets else frozenset()
    if own_depts:
        grants.department_users = frozenset(User.objects.filter(department_id__in=own_depts).values_list("id", flat=True))
        grants.subdepartment_users = frozenset(User.objects.filter(department_id__in=sub_depts).values_list("id", flat=True))
    return grants


def grants_for(user: User) -> Grants:
    cached = getattr(user, "_voronka_grants", None)  # per request: the user object lives as long as it
    if cached is not None and cached[0] == _version["n"]:
        return cached[1]
    if user.is_superuser:
        grants = Grants(user_id=user.pk, superuser=True)
    else:
        from voronka.core import config_cache

        version = config_cache.current_version(RIGHTS_KEY)
        ident = (user.department_id, user.is_active, user.is_superuser)
        hit = _process.get(user.pk)
        now = time.monotonic()
        if hit is not None and hit[0] == version and hit[1] == ident and now - hit[2] < PROCESS_TTL:
            grants = hit[3]
        else:
            grants = compute_grants(user)
            with _lock:
                _process[user.pk] = (version, ident, now, grants)
    user._voronka_grants = (_version["n"], grants)
    return grants


def _scope_allows(grants: Grants, scope: int, obj) -> bool:
    if scope >= Scope.ALL:
        return True
    if scope >= Scope.OPEN and getattr(obj, "is_open", False):
        return True
    ids = grants.responsible_ids(scope)
    return ids is None or getattr(obj, "responsible_id", None) in ids


def _token_allows(actor: Actor, perm: str) -> bool:
    if not actor.scopes:
        return True
    needed = "write" if perm in WRITE_PERMS else ("settings" if perm.startswith(SETTINGS_PREFIX) else perm)
    return needed in actor.scopes


def _is_observer(user_id: int, entity_type_id: int, obj) -> bool:
    from voronka.core.models import Observer

    return Observer.objects.filter(user_id=user_id, entity_type_id=entity_type_id, entity_id=obj.pk).exists()


class RoleEngine:
    def can(self, actor: Actor, perm: str, entity_type_id: int, obj=None, pipeline_id=None) -> bool:
        if actor.is_system:
            return True
        user = actor.user
        if user is None or not user.is_active or not _token_allows(actor, perm):
            return False
        grants = grants_for(user)
        if grants.superuser:
            return True
        if perm.startswith(SETTINGS_PREFIX):
            area = perm.partition(":")[2] or "pipelines"
            return area in grants.settings
        if pipeline_id is None and obj is not None:
            pipeline_id = getattr(obj, "pipeline_id", None)
        scope = grants.scope(entity_type_id, perm, pipeline_id)
        if obj is None:
            return scope > Scope.NONE
        if obj.pk is None:  # being created: the scope limits whom it may be given to
            if scope <= Scope.NONE:
                return False
            ids = grants.responsible_ids(scope)
            return ids is None or scope >= Scope.OPEN or obj.responsible_id in (ids | {None})
        if _scope_allows(grants, scope, obj):
            return True
        return perm == "read" and _is_observer(user.pk, entity_type_id, obj)

    def visible(self, actor: Actor, entity_type_id: int, qs, perm: str = "read", *, observers: bool = True):
        if actor.is_system:
            return qs
        user = actor.user
        if user is None or not user.is_active or not _token_allows(actor, perm):
            return qs.none()
        grants = grants_for(user)
        if grants.superuser:
            return qs
        by_pipeline = grants.rights.get((entity_type_id, perm), {})
        staged = hasattr(qs.model, "pipeline_id")
        default = by_pipeline.get(None, Scope.NONE)
        specific = {p: s for p, s in by_pipeline.items() if p is not None and s > default} if staged else {}
        if default >= Scope.ALL:
            return qs
        clauses: list[Q] = []
        if default > Scope.NONE:
            scope_q = self._scope_q(grants, default)
            clauses.append(scope_q & ~Q(pipeline_id__in=list(specific)) if specific else scope_q)
        groups: dict[int, list[int]] = {}
        for pipeline_id, scope in specific.items():
            groups.setdefault(scope, []).append(pipeline_id)
        for scope, pipelines in groups.items():
            clauses.append(Q(pipeline_id__in=pipelines) & self._scope_q(grants, scope))
        if observers and perm == "read" and (getattr(qs.model, "ENTITY_TYPE_ID", None) == entity_type_id
                               or entity_type_id >= entity_types.FIRST_DYNAMIC):
            from voronka.core.models import Observer

            clauses.append(Q(pk__in=Observer.objects.filter(user_id=user.pk, entity_type_id=entity_type_id)
                             .values("entity_id")))
        if not clauses:
            return qs.none()
        combined = clauses[0]
        for clause in clauses[1:]:
            combined |= clause
        return qs.filter(combined)

    @staticmethod
    def _scope_q(grants: Grants, scope: int) -> Q:
        """The records a scope covers. ALL is a filter that matches everything (pk is never null)."""
        if scope >= Scope.ALL:
            return Q(pk__isnull=False)
        ids = grants.responsible_ids(scope)
        q = Q(responsible_id=grants.user_id) if len(ids) == 1 else Q(responsible_id__in=sorted(ids))
        if scope >= Scope.OPEN:
            q |= Q(is_open=True)
        return q
