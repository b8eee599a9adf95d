"""The native REST API at /api/v1/: one NinjaAPI with token and session authentication."""

from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext as _
from ninja import NinjaAPI

from . import (
    analytics_api,
    auth,
    automation_api,
    errors,
    imports,
    intake,
    items,
    links,
    resources,
    settings_api,
    tasks,
)
from .calendar_api import router as calendar_router

DESCRIPTION = """
Voronka's native REST API.

**Authentication.** Send a personal API token as `Authorization: Bearer <token>` or `X-Api-Key: <token>`
(create one with `voronka token create --user LOGIN`). A token acts with the rights of its user; a token
limited to the `read` scope cannot change anything. A signed-in browser session works too (changes need
the `X-CSRFToken` header).

**Errors** are always JSON: `{"code": "...", "message": "...", "fields": {"name": ["..."]}}` with
400 (malformed request), 401 (no or bad token), 403 (not allowed), 404 (no such record, or not visible
to you), 409 (conflict) or 422 (a field is not valid; nothing was written).

**Lists** are pages in keyset order: pass `next_cursor` back as `cursor`. There are no total counts.
"""

api = NinjaAPI(
    title="Voronka API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    auth=auth.methods(),
    openapi_url="/openapi.json",
    docs_url="/docs",
)

errors.install(api)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return errors.respond(api, request, 404, "not_found", _("Nothing is found at this address."))


for prefix, router in resources.routers():
    api.add_router(prefix, router)
api.add_router("/tasks", tasks.router)
api.add_router("/links", links.router)
api.add_router("/pipelines", settings_api.pipelines)
api.add_router("/stages", settings_api.stages)
api.add_router("/custom-fields", settings_api.custom_fields)
api.add_router("/users", settings_api.users)
api.add_router("/intake", intake.intake)
api.add_router("", intake.lookups)
api.add_router("/distribution", intake.distribution_router)
api.add_router("/automation", automation_api.router)
api.add_router("/calendar", calendar_router)
api.add_router("/imports", imports.router)
api.add_router("/types", items.types_router)
api.add_router("/items", items.items_router)
api.add_router("/lists", items.lists_router)
api.add_router("/analytics", analytics_api.router)
