"""The variables of an operation's path, read from its aiohttp pattern.

`{name:regex}` is a variable; `\\d+` makes it an id (an integer), any other regex
a text of that shape (aiohttp's router has checked it before a handler runs).
"""

import functools
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from schemas.common import MAX_ID, Id
from server.core.errors import NotFound

DEFAULT_SEGMENT = "[^{}/]+"
"""aiohttp's pattern for a `{name}` without a regex of its own."""
ID_SEGMENT = r"\d+"


def split_path(path: str) -> tuple[str, list[tuple[str, str]]]:
    """The OpenAPI template of an aiohttp path and its (name, regex) variables.
    A regex may hold braces of its own (`{1,128}`), so this counts depth rather
    than matching up to the first `}`."""
    template: list[str] = []
    variables: list[tuple[str, str]] = []
    i = 0
    while i < len(path):
        if path[i] != "{":
            template.append(path[i])
            i += 1
            continue
        end = _closing_brace(path, i)
        name, _, regex = path[i + 1 : end].partition(":")
        variables.append((name, regex or DEFAULT_SEGMENT))
        template.append("{" + name + "}")
        i = end + 1
    return "".join(template), variables


def _closing_brace(path: str, start: int) -> int:
    depth = 0
    for i in range(start, len(path)):
        depth += {"{": 1, "}": -1}.get(path[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced braces in route path {path!r}")


@functools.cache
def variables(path: str | None) -> tuple[tuple[str, str], ...]:
    return tuple(split_path(path)[1]) if path else ()


def from_match(path: str | None, matched: Mapping[str, str]) -> dict[str, Any]:
    """The path's variables as the service takes them. An id past the store's
    range cannot exist, so it is a 404, not a validation error."""
    values: dict[str, Any] = {}
    for name, regex in variables(path):
        text = matched[name]
        if regex == ID_SEGMENT:
            if len(text) > 19 or int(text) > MAX_ID:
                raise NotFound("no such id", **{name: text[:40]})
            values[name] = int(text)
        else:
            values[name] = text
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


@functools.cache
def args_model(path: str | None) -> type[BaseModel]:
    """The path's variables as fields, for an op over `/ws`, where they arrive
    among the call's `args` and are validated like any field."""
    fields: dict[str, Any] = {}
    for name, regex in variables(path):
        if regex == ID_SEGMENT:
            fields[name] = (Id, ...)
        else:
            fields[name] = (Annotated[str, Field(pattern=f"^(?:{regex})$")], ...)
    return create_model("PathArgs", __base__=_Strict, **fields)
