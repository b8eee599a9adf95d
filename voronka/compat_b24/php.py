"""PHP-style request parameters: ``fields[PHONE][0][VALUE]=…``, ``select[]=ID`` and PHP's JSON shapes.

Bitrix24 clients send nested parameters in PHP bracket notation (query strings, form bodies and the
commands inside ``batch``); Django's ``QueryDict`` knows nothing of brackets, so they are parsed here.
Arrays whose keys are exactly 0..n-1 become lists, like PHP's ``json_encode`` does.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[]*)((?:\[[^\]]*\])*)(.*)$")
_SEGMENT = re.compile(r"\[([^\]]*)\]")
MAX_DEPTH = 8
MAX_PAIRS = 5000


class ParamError(ValueError):
    pass


def _next_index(node: dict) -> str:
    ints = [int(k) for k in node if isinstance(k, str) and k.lstrip("-").isdigit()]
    return str(max(ints) + 1 if ints else 0)


def put(root: dict, key: str, value: Any) -> None:
    """Set ``value`` at the path named by a PHP bracket key."""
    m = _KEY.match(key)
    base, brackets, tail = m.group(1), m.group(2), m.group(3)
    if not base:
        return  # PHP ignores keys that start with "["
    if tail:  # an unclosed bracket: PHP keeps the key literally from the first "[" (with "[" turned into "_")
        base, brackets = key.replace("[", "_", 1) if not brackets else base, brackets
    path = [base, *_SEGMENT.findall(brackets)][:MAX_DEPTH]
    node = root
    for i, part in enumerate(path):
        if part == "":
            part = _next_index(node)
        if i == len(path) - 1:
            node[part] = value
        else:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child


def listify(value: Any) -> Any:
    """Dicts keyed exactly "0".."n-1" become lists, recursively (what PHP arrays look like in JSON)."""
    if isinstance(value, dict):
        out = {k: listify(v) for k, v in value.items()}
        if out and all(isinstance(k, str) and k.isdigit() for k in out) and \
                sorted(int(k) for k in out) == list(range(len(out))):
            return [out[str(i)] for i in range(len(out))]
        return out
    if isinstance(value, list):
        return [listify(v) for v in value]
    return value


def parse_pairs(pairs) -> dict:
    root: dict = {}
    for n, (key, value) in enumerate(pairs):
        if n >= MAX_PAIRS:
            raise ParamError("too many parameters")
        put(root, key, value)
    return listify(root)


def parse_str(query: str) -> dict:
    """PHP's ``parse_str``: percent-decoding of keys and values, then bracket paths."""
    return parse_pairs(parse_qsl(query or "", keep_blank_values=True))


def json_shape(value: Any) -> Any:
    """Empty mappings as ``[]`` and 0..n-1 mappings as lists: the shapes PHP clients expect."""
    if isinstance(value, dict):
        if not value:
            return []
        return listify({str(k): json_shape(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [json_shape(v) for v in value]
    return value
