"""Links between records: list a record's links, link two records, unlink. Writes go through voronka.links.actions."""

import datetime

from django.utils.translation import gettext as _
from ninja import Query, Router, Status
from pydantic import BaseModel, Field

from voronka.core.errors import NotFound
from voronka.links import actions, selectors

from .records import RecordId
from .schemas import MAX_ID, Strict, responses

router = Router(tags=["Links"])

TypeId = Field(..., ge=1, le=2**31 - 1, description="Kind of record (1 lead, 2 deal, 3 contact, 4 company, smart processes …).")
RecId = Field(..., ge=1, le=MAX_ID, description="Id of the record.")
Role = Field("", max_length=50, pattern=r"^[a-z0-9_\-]*$",
             description="What the link means (`production`, `complaint` …); empty for a plain link.")


class RecordRef(Strict):
    entity_type_id: int = TypeId
    id: int = RecId


class LinkIn(Strict):
    source: RecordRef = Field(..., description="The record the link starts from (the deal for its production item).")
    target: RecordRef
    role: str = Role


class LinkOut(BaseModel):
    id: int
    source: dict
    target: dict
    role: str
    created_at: datetime.datetime
    created_by: int | None


class LinkedOut(LinkOut):
    direction: str = Field(description="`out`: the asked record is the source; `in`: it is the target.")
    other: dict = Field(description="The far end: `entity_type_id`, `id`, `title`, or `hidden: true` when you may not see it.")


class LinkedPage(BaseModel):
    items: list[LinkedOut]


class LinkFilters(BaseModel):
    entity_type_id: int = TypeId
    entity_id: int = RecId
    role: str | None = Field(None, max_length=50)
    other_type_id: int | None = Field(None, ge=1, le=2**31 - 1)


def _out(link) -> dict:
    return {"id": link.pk, "source": {"entity_type_id": link.source_type_id, "id": link.source_id},
            "target": {"entity_type_id": link.target_type_id, "id": link.target_id}, "role": link.role,
            "created_at": link.created_at, "created_by": link.created_by_id}


def _title(obj) -> str:
    return str(getattr(obj, "title", "") or getattr(obj, "name", "") or obj)


@router.get("", response=responses({200: LinkedPage}), operation_id="list_links", summary="Links of a record")
def list_links(request, filters: Query[LinkFilters]):
    rows = selectors.links_of(request.auth, filters.entity_type_id, filters.entity_id, role=filters.role,
                              other_type_id=filters.other_type_id)
    items = []
    for row in rows:
        other = {"entity_type_id": row.entity_type_id, "hidden": True} if row.hidden else \
            {"entity_type_id": row.entity_type_id, "id": row.entity_id, "title": _title(row.obj)}
        items.append({**_out(row.link), "direction": row.direction, "other": other})
    return {"items": items}


@router.post("", response=responses({201: LinkOut}), operation_id="create_link", summary="Link two records")
def create_link(request, payload: LinkIn):
    link = actions.link(request.auth, (payload.source.entity_type_id, payload.source.id),
                        (payload.target.entity_type_id, payload.target.id), role=payload.role)
    return Status(201, _out(link))


@router.get("/{id}", response=responses({200: LinkOut}), operation_id="get_link", summary="Read a link")
def get_link(request, id: int = RecordId):
    link = selectors.get_link(request.auth, id)
    if link is None:
        raise NotFound(_("Link #%(id)s does not exist.") % {"id": id})
    return _out(link)


@router.delete("/{id}", response=responses({204: None}), operation_id="delete_link", summary="Unlink")
def delete_link(request, id: int = RecordId):
    actions.unlink(request.auth, id)
    return Status(204, None)
