"""Short middleware stacks: a kind of request that needs only part of ``MIDDLEWARE`` (a token API call, a public
web form's request) runs its own list around the same view dispatch, and every other request the whole list.

Django builds ``MIDDLEWARE`` as a chain: each layer wrapped by ``convert_exception_to_response`` (whose
``__wrapped__`` is the layer), each layer keeping its ``get_response``, and at the bottom the handler's bound
``_get_response`` (URL resolution, the view middleware, the view). A ``ShortStack`` placed in ``MIDDLEWARE`` finds
that bottom below itself and builds the middleware named by its setting on top of it, once per process.
"""

from __future__ import annotations

from django.conf import settings
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string


def view_dispatch(get_response):
    """The handler's view dispatch at the bottom of a middleware chain (already converting exceptions to
    responses), or None for a chain of another shape."""
    step = get_response
    for _ in range(100):
        wrapped = getattr(step, "__wrapped__", None)
        if wrapped is None:
            return None
        if getattr(wrapped, "__name__", "") == "_get_response" and hasattr(wrapped, "__self__"):
            return step
        step = getattr(wrapped, "get_response", None)
    return None


def layer_names(chain) -> list[str]:
    """The class names of a chain's layers, top down, «dispatch» for the bottom (for tests and diagnostics)."""
    names = []
    step = chain
    while step is not None and hasattr(step, "__wrapped__"):
        layer = step.__wrapped__
        names.append(type(layer).__name__ if not hasattr(layer, "__self__") else "dispatch")
        step = getattr(layer, "get_response", None)
    return names


class ShortStack:
    """A request that ``wants`` runs the middleware listed in the setting ``setting`` (``short``) around the view
    dispatch; any other the list below this one (``get_response``). With the setting unset, or a chain of another
    shape, every request takes the whole list."""

    setting = ""

    def __init__(self, get_response):
        self.get_response = get_response
        self.short = None
        paths = getattr(settings, self.setting, None)
        dispatch = view_dispatch(get_response) if paths else None
        if dispatch is None:
            return
        chain = dispatch
        for path in reversed(paths):
            chain = convert_exception_to_response(import_string(path)(chain))
        self.short = chain

    def wants(self, request) -> bool:
        raise NotImplementedError

    def __call__(self, request):
        if self.short is not None and self.wants(request):
            return self.short(request)
        return self.get_response(request)
