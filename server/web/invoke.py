"""Calling the service method an operation names (`Op.service`).

Its parameters are bound by name, in this order:

- `tenant`: the caller's tenant; `caller`: the caller (`Principal`); `agent`: the
  caller's agent, "anonymous" without one;
- a variable of the operation's path of that name;
- a field of the request model of that name;
- else the request model itself (its body, or its query).

A plan is made for every operation when the application is built, so an
operation whose method is missing or cannot be bound fails at start-up, not on
its first request (tests/test_ops.py builds them all).
"""

import enum
import inspect
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from schemas.ops import OPS, Op
from server.auth.service import Principal
from server.web.context import Services
from server.web.paths import variables


class Source(enum.Enum):
    TENANT = "tenant"
    CALLER = "caller"
    AGENT = "agent"
    PATH = "path"
    FIELD = "field"
    REQUEST = "request"


CALLER_SOURCES = {"tenant": Source.TENANT, "caller": Source.CALLER, "agent": Source.AGENT}


@dataclass(frozen=True, slots=True)
class Plan:
    capability: str
    method: str
    params: tuple[tuple[str, Source], ...]
    awaits: bool
    """A coroutine function (else its result is the reply itself)."""


class UnboundOperation(Exception):
    """An operation's service method is missing, or has a parameter no source fills."""


def plan(op: Op) -> Plan:
    if op.service is None:
        raise UnboundOperation(f"{op.name} names no service method")
    capability, _, method_name = op.service.partition(".")
    service = typing.get_type_hints(Services).get(capability)
    method = getattr(service, method_name, None)
    if method is None:
        raise UnboundOperation(f"{op.name}: no method {op.service}")
    return Plan(capability, method_name, _sources(op, method), inspect.iscoroutinefunction(method))


def _sources(op: Op, method: Any) -> tuple[tuple[str, Source], ...]:
    path = {name for name, _ in variables(op.path)}
    fields = _fields(op.body if op.body is not None else op.query)
    model = op.body is not None or op.query is not None
    params: list[tuple[str, Source]] = []
    for name in list(inspect.signature(method).parameters)[1:]:
        source = _source(name, path, fields, model)
        if source is None:
            raise UnboundOperation(f"{op.name}: nothing binds {op.service}({name})")
        params.append((name, source))
    if sum(s is Source.REQUEST for _, s in params) > 1:
        raise UnboundOperation(f"{op.name}: two parameters take the request")
    return tuple(params)


def _source(name: str, path: set[str], fields: set[str], model: bool) -> Source | None:
    if name in CALLER_SOURCES:
        return CALLER_SOURCES[name]
    if name in path:
        return Source.PATH
    if name in fields:
        return Source.FIELD
    return Source.REQUEST if model else None


def _fields(model: Any) -> set[str]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return set(model.model_fields)
    return set()


def plans() -> dict[str, Plan]:
    return {op.name: plan(op) for op in OPS if op.service is not None}


async def invoke(
    p: Plan, svc: Services, caller: Principal, path: dict[str, Any], request: Any
) -> Any:
    """The method's reply. Safe to cancel exactly when the method is."""
    kwargs = {name: _value(source, name, caller, path, request) for name, source in p.params}
    result = getattr(getattr(svc, p.capability), p.method)(**kwargs)
    return await result if p.awaits else result


def _value(source: Source, name: str, caller: Principal, path: dict[str, Any], request: Any) -> Any:
    match source:
        case Source.TENANT:
            return caller.tenant
        case Source.CALLER:
            return caller
        case Source.AGENT:
            return caller.agent or "anonymous"
        case Source.PATH:
            return path[name]
        case Source.FIELD:
            return getattr(request, name)
        case Source.REQUEST:
            return request
