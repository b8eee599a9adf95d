"""The roles Voronka ships with. Installed after every migrate (idempotent; an administrator's edits stay)."""

from __future__ import annotations

from django.utils.translation import gettext_noop

from .models import Role, RolePermission, Scope

LEAD, DEAL, CONTACT, COMPANY = 1, 2, 3, 4
CRM = (LEAD, DEAL, CONTACT, COMPANY)
ALL_PERMS = ("read", "add", "update", "delete", "export", "import")


def _grid(types, **perms) -> list[tuple[int, str, int]]:
    return [(t, perm, scope) for t in types for perm, scope in perms.items()]


PRESETS: dict[str, dict] = {
    "administrator": {
        "name": gettext_noop("Administrator"),
        "description": gettext_noop("Everything, including settings, the recycle bin and rights."),
        "settings": list(Role.SETTINGS_AREAS),
        "rights": _grid(CRM, **{p: Scope.ALL for p in ALL_PERMS}),
    },
    "head_of_sales": {
        "name": gettext_noop("Head of sales"),
        "description": gettext_noop("Sees every client and deal; changes and exports those of the department and below."),
        "settings": ["robots", "forms"],
        "rights": _grid(CRM, read=Scope.ALL, add=Scope.SUBDEPARTMENTS, update=Scope.SUBDEPARTMENTS,
                        export=Scope.SUBDEPARTMENTS, import_=Scope.SUBDEPARTMENTS),
    },
    "sales_manager": {
        "name": gettext_noop("Sales manager"),
        "description": gettext_noop("Works with own leads and deals; sees the department's."),
        "settings": [],
        "rights": _grid((LEAD, DEAL), read=Scope.DEPARTMENT, add=Scope.OWN, update=Scope.OWN)
        + _grid((CONTACT, COMPANY), read=Scope.OPEN, add=Scope.OWN, update=Scope.OWN),
    },
    "call_centre_operator": {
        "name": gettext_noop("Call-centre operator"),
        "description": gettext_noop("Takes and qualifies own leads; no deals."),
        "settings": [],
        "rights": _grid((LEAD,), read=Scope.OWN, add=Scope.OWN, update=Scope.OWN)
        + _grid((CONTACT, COMPANY), read=Scope.OWN, add=Scope.OWN),
    },
    "production_master": {
        "name": gettext_noop("Production master"),
        "description": gettext_noop("Works with the department's deals (give the Production pipeline only, per pipeline)."),
        "settings": [],
        "rights": _grid((DEAL,), read=Scope.DEPARTMENT, update=Scope.DEPARTMENT)
        + _grid((CONTACT, COMPANY), read=Scope.OPEN),
    },
    "support": {
        "name": gettext_noop("Support"),
        "description": gettext_noop("Reads every client; handles the department's complaint deals."),
        "settings": [],
        "rights": _grid((DEAL,), read=Scope.DEPARTMENT, add=Scope.DEPARTMENT, update=Scope.DEPARTMENT)
        + _grid((CONTACT, COMPANY), read=Scope.ALL, update=Scope.OWN),
    },
}


def install_presets(**_kwargs) -> int:
    """Create the preset roles that are missing. Returns how many were created."""
    created = 0
    for code, spec in PRESETS.items():
        role, was_created = Role.objects.get_or_create(
            code=code, defaults={"name": spec["name"], "description": spec["description"],
                                 "settings_rights": spec["settings"], "is_preset": True})
        if not was_created:
            continue
        created += 1
        RolePermission.objects.bulk_create([
            RolePermission(role=role, entity_type_id=t, perm=perm.rstrip("_"), scope=scope)
            for t, perm, scope in spec["rights"]])
    if created:
        from .permissions import rights_changed

        rights_changed()
    return created
