"""OpenAPI 3.1 document generated from the table of operations and the schemas.

The document must describe what the server really accepts, so that generated
clients and contract testers (openapi-spec-validator, schemathesis) agree with it:
query values arrive as text and are parsed laxly, absent means None (a query
string cannot carry a JSON null), path ids are digits, cursors are opaque
base64url, and a body whose every field has a default may be left out.
"""

import re
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from schemas import ErrorBody
from schemas.common import MAX_ID
from schemas.ops import Op
from server.web.paths import ID_SEGMENT, split_path

REF = "#/components/schemas/{model}"
CURSOR = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_-]+$",
    "maxLength": 256,
    "description": "Opaque: the `next_cursor` of the previous page.",
}


class _Schemas(GenerateJsonSchema):
    """Pydantic's generator, with lax datetimes described as the server parses
    them: RFC 3339 text, a date, or Unix seconds. `lax` is the default for
    fields that do not say (query models are lax; bodies are strict)."""

    lax = False

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        text = super().datetime_schema(schema)
        strict = schema.get("strict")
        if (not self.lax) if strict is None else strict:
            return text
        return {"anyOf": [text, {"type": "string", "format": "date"}, {"type": "number"}]}


class _LaxSchemas(_Schemas):
    lax = True


def openapi(routes: tuple[Op, ...], version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for route in routes:
        if route.method is None or route.path is None:
            continue
        template, _ = split_path(route.path)
        paths.setdefault(template, {})[route.method.lower()] = _operation(route, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Kaizen", "version": version},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(route: Op, components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary, "responses": _responses(route, components)}
    params = _path_params(route.path or "") + _query_params(route.query, components)
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {
            "required": not _all_defaulted(route.body),
            "content": _json(_schema(route.body, components)),
        }
    if route.public:
        op["security"] = []
    return op


def _all_defaulted(body: Any) -> bool:
    """A model whose fields all have defaults: its handler reads an empty body as `{}`."""
    if not (isinstance(body, type) and issubclass(body, BaseModel)):
        return False
    return not any(field.is_required() for field in body.model_fields.values())


def _responses(route: Op, components: dict[str, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if route.reply is not None:
        ok["content"] = _json(_schema(route.reply, components))
    error = {"description": "Error", "content": _json(_schema(ErrorBody, components))}
    return {str(route.status): ok, "default": error}


def _schema(kind: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(kind).json_schema(ref_template=REF, schema_generator=_Schemas)
    components.update(schema.pop("$defs", {}))
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", kind.__name__)
        components[name] = schema
        return {"$ref": REF.format(model=name)}
    return schema


def _path_params(path: str) -> list[dict[str, Any]]:
    _, variables = split_path(path)
    return [
        {"name": name, "in": "path", "required": True, "schema": _segment_schema(regex)}
        for name, regex in variables
    ]


def _segment_schema(regex: str) -> dict[str, Any]:
    if regex == ID_SEGMENT:
        # an id past the store's range is a 404: no such id can exist.
        return {"type": "integer", "minimum": 0, "maximum": MAX_ID}
    return {"type": "string", "pattern": f"^(?:{regex})$"}


def _query_params(
    model: type[BaseModel] | None, components: dict[str, Any]
) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(ref_template=REF, schema_generator=_LaxSchemas)
    components.update(schema.pop("$defs", {}))
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": CURSOR if name == "cursor" else _without_null(prop),
        }
        for name, prop in schema["properties"].items()
    ]


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query value is absent or text, never JSON null: drop the null branch and
    the null default, which would otherwise be sent as the text "null"."""
    schema = dict(schema)
    if schema.get("default", ...) is None:
        del schema["default"]
    branches: list[dict[str, Any]] = [b for b in schema.get("anyOf", ()) if b != {"type": "null"}]
    if "anyOf" in schema:
        del schema["anyOf"]
        if len(branches) == 1:
            return branches[0] | schema
        schema["anyOf"] = branches
    return schema


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}
