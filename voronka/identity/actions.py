"""Writes to users' rights: roles, their rights per entity type and pipeline, and assignments.

Every change is audited and needs the «roles» settings right.
"""

from __future__ import annotations

from django.db import transaction
from django.utils.translation import gettext as _

from voronka.core import audit, entity_types, policies
from voronka.core.actor import Actor
from voronka.core.errors import Conflict, NotFound, ValidationFailed

from .models import Department, Role, RoleAssignment, RolePermission, Scope, User
from .permissions import forget_cached, rights_changed

ROLES = "settings:roles"


def _clean_rights(rights) -> list[tuple[int, int | None, str, int]]:
    """Validate [{"entity_type_id": 1, "pipeline": null, "perm": "read", "scope": "department"}, …]."""
    from voronka.pipelines.models import Pipeline

    if not isinstance(rights, list):
        raise ValidationFailed(_("Rights must be a list."), fields={"rights": [_("must be a list")]})
    names = {label.lower(): value for value, label in Scope.choices} | {
        "none": 0, "own": 10, "department": 20, "subdepartments": 30, "open": 40, "all": 50}
    cleaned, errors = [], {}
    for index, item in enumerate(rights):
        key = f"rights.{index}"
        if not isinstance(item, dict):
            errors[key] = [_("must be an object")]
            continue
        try:
            info = entity_types.get(int(item.get("entity_type_id")))
        except (LookupError, TypeError, ValueError):
            errors[key] = [_("unknown entity type")]
            continue
        perm = item.get("perm")
        if perm not in RolePermission.Perm.values:
            errors[key] = [_("unknown right «%(p)s»") % {"p": perm}]
            continue
        scope = item.get("scope")
        scope = names.get(scope.lower()) if isinstance(scope, str) else scope
        if scope not in Scope.values:
            errors[key] = [_("unknown scope")]
            continue
        pipeline = item.get("pipeline")
        if pipeline is not None:
            if not Pipeline.objects.filter(pk=pipeline, entity_type_id=info.id).exists():
                errors[key] = [_("no such pipeline for this kind of record")]
                continue
        cleaned.append((info.id, pipeline, perm, scope))
    if errors:
        raise ValidationFailed(_("Some rights are not valid."), fields=errors)
    return cleaned


def create_role(actor: Actor, *, code: str, name: str, description: str = "", settings_rights=None,
                rights=None) -> Role:
    policies.require(actor, ROLES, 0)
    areas = list(settings_rights or [])
    bad = [a for a in areas if a not in Role.SETTINGS_AREAS]
    if bad:
        raise ValidationFailed(_("Unknown settings areas."), fields={"settings_rights": bad})
    cleaned = _clean_rights(rights or [])
    with transaction.atomic():
        if Role.objects.filter(code=code).exists():
            raise Conflict(_("A role with code «%(c)s» exists.") % {"c": code}, fields={"code": [_("taken")]})
        role = Role(code=code, name=name, description=description, settings_rights=areas)
        from django.core.exceptions import ValidationError

        from voronka.core.errors import from_django_validation

        try:
            role.full_clean()
        except ValidationError as exc:
            raise from_django_validation(exc) from None
        role.save()
        _write_rights(role, cleaned)
        audit.record(actor, "role.created", role=role.code, rights=len(cleaned))
        transaction.on_commit(forget_cached)
        rights_changed()
        return role


def _write_rights(role: Role, cleaned) -> None:
    RolePermission.objects.filter(role=role).delete()
    merged: dict[tuple, int] = {}
    for et, pipeline, perm, scope in cleaned:
        merged[(et, pipeline, perm)] = max(merged.get((et, pipeline, perm), 0), scope)
    RolePermission.objects.bulk_create([RolePermission(role=role, entity_type_id=et, pipeline_id=p, perm=perm, scope=s)
                                        for (et, p, perm), s in merged.items()])


def _rights_snapshot(role: Role) -> list:
    rows = RolePermission.objects.filter(role=role).values_list("entity_type_id", "pipeline_id", "perm", "scope")
    return sorted(rows, key=lambda r: (r[0], r[1] or 0, r[2]))


def set_role_rights(actor: Actor, role_id: int, *, rights, settings_rights=None, menu_hidden=None) -> Role:
    policies.require(actor, ROLES, 0)
    cleaned = _clean_rights(rights)
    with transaction.atomic():
        role = Role.objects.select_for_update().filter(pk=role_id).first()
        if role is None:
            raise NotFound(_("Role #%(id)s does not exist.") % {"id": role_id})
        before = _rights_snapshot(role)
        _write_rights(role, cleaned)
        if settings_rights is not None:
            bad = [a for a in settings_rights if a not in Role.SETTINGS_AREAS]
            if bad:
                raise ValidationFailed(_("Unknown settings areas."), fields={"settings_rights": bad})
            role.settings_rights = list(settings_rights)
            role.save(update_fields=["settings_rights"])
        if menu_hidden is not None:
            role.menu_hidden = sorted({str(m)[:30] for m in menu_hidden})
            role.save(update_fields=["menu_hidden"])
        after = _rights_snapshot(role)
        audit.record(actor, "role.rights_changed", role=role.code, before=before, after=after)
        transaction.on_commit(forget_cached)
        rights_changed()
        return role


def assign_role(actor: Actor, role_id: int, *, user_id: int | None = None, department_id: int | None = None,
                with_subdepartments: bool = True) -> RoleAssignment:
    policies.require(actor, ROLES, 0)
    if (user_id is None) == (department_id is None):
        raise ValidationFailed(_("Give either a user or a department."), fields={"user_id": [_("one of the two")]})
    with transaction.atomic():
        role = Role.objects.filter(pk=role_id).first()
        if role is None:
            raise NotFound(_("Role #%(id)s does not exist.") % {"id": role_id})
        if user_id is not None and not User.objects.filter(pk=user_id).exists():
            raise ValidationFailed(_("No such user."), fields={"user_id": [_("not found")]})
        if department_id is not None and not Department.objects.filter(pk=department_id).exists():
            raise ValidationFailed(_("No such department."), fields={"department_id": [_("not found")]})
        assignment, _created = RoleAssignment.objects.get_or_create(
            role=role, user_id=user_id, department_id=department_id,
            defaults={"with_subdepartments": with_subdepartments})
        audit.record(actor, "role.assigned", role=role.code, user=user_id, department=department_id)
        transaction.on_commit(forget_cached)
        rights_changed()
        return assignment


def unassign_role(actor: Actor, assignment_id: int) -> None:
    policies.require(actor, ROLES, 0)
    with transaction.atomic():
        assignment = RoleAssignment.objects.select_related("role").filter(pk=assignment_id).first()
        if assignment is None:
            raise NotFound(_("Assignment #%(id)s does not exist.") % {"id": assignment_id})
        audit.record(actor, "role.unassigned", role=assignment.role.code, user=assignment.user_id,
                     department=assignment.department_id)
        assignment.delete()
        transaction.on_commit(forget_cached)
        rights_changed()


def enable_second_factor(actor: Actor, user_id: int) -> tuple[str, str]:
    """Give a user a new TOTP secret; returns (secret, otpauth URI for an authenticator app).

    A user does this for themselves; an administrator with the «users» settings right for anyone.
    """
    from .totp import new_secret, provisioning_uri

    if actor.user_id != user_id:
        policies.require(actor, "settings:users", 0)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise NotFound(_("User #%(id)s does not exist.") % {"id": user_id})
        user.totp_secret = new_secret()
        user.save(update_fields=["totp_secret"])
        audit.record(actor, "user.second_factor_enabled", user=user.pk)
        return user.totp_secret, provisioning_uri(user.totp_secret, user.username)


def disable_second_factor(actor: Actor, user_id: int) -> None:
    if actor.user_id != user_id:
        policies.require(actor, "settings:users", 0)
    with transaction.atomic():
        updated = User.objects.filter(pk=user_id).update(totp_secret="")
        if not updated:
            raise NotFound(_("User #%(id)s does not exist.") % {"id": user_id})
        audit.record(actor, "user.second_factor_disabled", user=user_id)


USERS = "settings:users"
USER_FIELDS = ("username", "first_name", "last_name", "middle_name", "email", "department", "position", "phone",
               "is_active", "time_zone", "language")


def _user_values(data: dict) -> dict:
    unknown = set(data) - set(USER_FIELDS) - {"password"}
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    values = dict(data)
    if "department" in values:
        dept = values.pop("department")
        if dept not in (None, "") and not Department.objects.filter(pk=dept).exists():
            raise ValidationFailed(_("No such department."), fields={"department": [_("not found")]})
        values["department_id"] = dept or None
    return values


def create_user(actor: Actor, *, password: str, **data) -> User:
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    from voronka.core.errors import from_django_validation

    policies.require(actor, USERS, 0)
    values = _user_values(data)
    with transaction.atomic():
        if User.objects.filter(username=values.get("username")).exists():
            raise Conflict(_("This login is taken."), fields={"username": [_("taken")]})
        user = User(**values)
        try:
            validate_password(password, user)
            user.full_clean(exclude=["password"])
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                raise from_django_validation(exc) from None
            raise ValidationFailed(_("The password is too weak."), fields={"password": exc.messages}) from None
        user.set_password(password)
        user.save()
        audit.record(actor, "user.created", user=user.pk, username=user.username)
        rights_changed()
        return user


def update_user(actor: Actor, user_id: int, **data) -> User:
    from django.core.exceptions import ValidationError

    from voronka.core.errors import from_django_validation

    policies.require(actor, USERS, 0)
    values = _user_values(data)
    password = values.pop("password", None)
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise NotFound(_("User #%(id)s does not exist.") % {"id": user_id})
        before = {k: getattr(user, k) for k in values}
        for key, value in values.items():
            setattr(user, key, value)
        try:
            user.full_clean(exclude=["password"])
        except ValidationError as exc:
            raise from_django_validation(exc) from None
        if password:
            from django.contrib.auth.password_validation import validate_password

            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise ValidationFailed(_("The password is too weak."), fields={"password": exc.messages}) from None
            user.set_password(password)
        user.save()
        changed = sorted(k for k in values if before.get(k) != getattr(user, k)) + (["password"] if password else [])
        audit.record(actor, "user.changed", user=user.pk, changed=changed)
        rights_changed()
        return user


def create_department(actor: Actor, *, name: str, parent: int | None = None, head: int | None = None) -> Department:
    policies.require(actor, USERS, 0)
    if not (name or "").strip():
        raise ValidationFailed(_("A department needs a name."), fields={"name": [_("empty")]})
    with transaction.atomic():
        if parent is not None and not Department.objects.filter(pk=parent).exists():
            raise ValidationFailed(_("No such department."), fields={"parent": [_("not found")]})
        if head is not None and not User.objects.filter(pk=head).exists():
            raise ValidationFailed(_("No such user."), fields={"head": [_("not found")]})
        dept = Department.objects.create(name=name.strip()[:200], parent_id=parent, head_id=head)
        audit.record(actor, "department.created", department=dept.pk, name=dept.name)
        rights_changed()
        return dept


def update_department(actor: Actor, department_id: int, **data) -> Department:
    policies.require(actor, USERS, 0)
    unknown = set(data) - {"name", "parent", "head"}
    if unknown:
        raise ValidationFailed(_("Unknown fields."), fields={k: [_("Unknown field.")] for k in sorted(unknown)})
    with transaction.atomic():
        dept = Department.objects.select_for_update().filter(pk=department_id).first()
        if dept is None:
            raise NotFound(_("Department #%(id)s does not exist.") % {"id": department_id})
        if "parent" in data:
            parent = data["parent"]
            if parent is not None:
                if parent == dept.pk or parent in dept.descendant_ids():
                    raise ValidationFailed(_("A department cannot be inside itself."), fields={"parent": [_("cycle")]})
                if not Department.objects.filter(pk=parent).exists():
                    raise ValidationFailed(_("No such department."), fields={"parent": [_("not found")]})
            dept.parent_id = parent
        if "head" in data:
            if data["head"] is not None and not User.objects.filter(pk=data["head"]).exists():
                raise ValidationFailed(_("No such user."), fields={"head": [_("not found")]})
            dept.head_id = data["head"]
        if "name" in data:
            if not (data["name"] or "").strip():
                raise ValidationFailed(_("A department needs a name."), fields={"name": [_("empty")]})
            dept.name = data["name"].strip()[:200]
        dept.save()
        audit.record(actor, "department.changed", department=dept.pk, changed=sorted(data))
        rights_changed()
        return dept


def issue_token(actor: Actor, *, user_id: int, name: str = "", scopes=None, expires_at=None):
    """A new API token for a user (oneself, or anyone with the «integrations» right). Returns (token, raw)."""
    from .models import ApiToken

    if actor.user_id != user_id:
        policies.require(actor, "settings:integrations", 0)
    scopes = list(scopes or [])
    bad = [s for s in scopes if s not in ("read", "write", "export", "settings")]
    if bad:
        raise ValidationFailed(_("Unknown scopes."), fields={"scopes": bad})
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ValidationFailed(_("No such active user."), fields={"user_id": [_("not found")]})
    token, raw = ApiToken.issue(user, name=(name or "")[:100], scopes=scopes, expires_at=expires_at)
    audit.record(actor, "token.issued", user=user.pk, token=token.prefix, scopes=scopes)
    return token, raw


def revoke_token(actor: Actor, token_id: int) -> None:
    from django.utils import timezone

    from .models import ApiToken

    token = ApiToken.objects.filter(pk=token_id).first()
    if token is None:
        raise NotFound(_("Token #%(id)s does not exist.") % {"id": token_id})
    if actor.user_id != token.user_id:
        policies.require(actor, "settings:integrations", 0)
    if token.revoked_at is None:
        from django.db import transaction

        from .models import tokens_changed

        with transaction.atomic():
            ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
            tokens_changed()  # every process drops the tokens it keeps: the next request with this one is refused
            audit.record(actor, "token.revoked", user=token.user_id, token=token.prefix)
