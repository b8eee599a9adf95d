"""Model instances built without ``Model.__init__``, for the hot write path.

``Model(*values)`` sends ``pre_init``/``post_init``, checks the argument count and sets every field through
``setattr`` (a data descriptor for each foreign key): ~10 µs for a record of 40 columns, several times per
single create (the record, its phones, the API token and its user). With every concrete field's value in
hand the instance is the same object without that walk: its ``__dict__`` holds each field's attname and a
fresh ``ModelState``. Models with ``pre_init``/``post_init`` receivers (image fields, generic relations of
some libraries) go through the constructor as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import signals
from django.db.models.base import ModelState


def _plain(model) -> bool:
    """No receiver of the init signals for this model (looked up each time: receivers may connect later)."""
    return not (signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model))


def build(model, attnames: Sequence[str], values: Sequence, *, db: str | None = None):
    """An instance of ``model`` with ``values`` for ``attnames`` (every concrete field, in any order).

    ``db`` given: a loaded row (``_state.adding`` False), as ``Model.from_db`` builds it; else a new one."""
    if not _plain(model):
        obj = model(**dict(zip(attnames, values, strict=True)))
        if db is not None:
            obj._state.adding, obj._state.db = False, db
        return obj
    obj = model.__new__(model)
    obj.__dict__.update(zip(attnames, values, strict=True))
    state = obj._state = ModelState()
    if db is not None:
        state.adding, state.db = False, db
    return obj


_layouts: dict[type, tuple] = {}


def _layout(model) -> tuple[list[str], list[tuple[bool, object]], dict[str, int]]:
    layout = _layouts.get(model)
    if layout is None:
        fields = model._meta.concrete_fields
        layout = _layouts[model] = (
            [f.attname for f in fields],
            # each field's default: a constant, or a callable called per instance
            [(True, f.default) if f.has_default() and callable(f.default) else (False, f.get_default())
             for f in fields],
            {**{f.name: i for i, f in enumerate(fields)}, **{f.attname: i for i, f in enumerate(fields)}},
        )
    return layout


def new(model, **values):
    """A fresh unsaved instance: every field's default, then ``values`` (field names or attnames; ids for
    foreign keys), as ``Model(**values)`` builds it."""
    attnames, defaults, position = _layout(model)
    given = {position[name]: value for name, value in values.items()}
    # a callable default (the time, a fresh dict) is called only for a field not given
    args = [given[i] if i in given else default() if call else default for i, (call, default) in enumerate(defaults)]
    return build(model, attnames, args)
