"""OpenAPI 3.1 document generated from the route table and the schemas."""

import re
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, TypeAdapter

from schemas import ErrorBody

if TYPE_CHECKING:
    from server.transport.route import Route

REF = "#/components/schemas/{model}"


def openapi(routes: "tuple[Route, ...]", version: str) -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for route in routes:
        path = re.sub(r"\{(\w+)(:[^}]*)?\}", r"{\1}", route.path)
        paths.setdefault(path, {})[route.method.lower()] = _operation(route, components)
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


def _operation(route: "Route", components: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": route.summary, "responses": _responses(route, components)}
    params = _path_params(route.path) + _query_params(route.query)
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": _json(_schema(route.body, components))}
    if route.public:
        op["security"] = []
    return op


def _responses(route: "Route", components: dict[str, Any]) -> dict[str, Any]:
    ok: dict[str, Any] = {"description": "OK"}
    if route.reply is not None:
        ok["content"] = _json(_schema(route.reply, components))
    error = {"description": "Error", "content": _json(_schema(ErrorBody, components))}
    return {str(route.status): ok, "default": error}


def _schema(kind: Any, components: dict[str, Any]) -> dict[str, Any]:
    schema = TypeAdapter(kind).json_schema(ref_template=REF)
    components.update(schema.pop("$defs", {}))
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", kind.__name__)
        components[name] = schema
        return {"$ref": REF.format(model=name)}
    return schema


def _path_params(path: str) -> list[dict[str, Any]]:
    names = re.findall(r"\{(\w+)(?::[^}]*)?\}", path)
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


def _query_params(model: type[BaseModel] | None) -> list[dict[str, Any]]:
    if model is None:
        return []
    props = model.model_json_schema()["properties"]
    return [{"name": name, "in": "query", "schema": schema} for name, schema in props.items()]


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}
