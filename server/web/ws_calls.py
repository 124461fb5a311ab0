"""The `call` frame of `/ws`: every operation the table offers as a call
(`Op.ws == "call"`), with the same models and service method as its HTTP route.

`args` holds the path's variables by name beside the request: the body's fields
(or, where the op names a `body_field`, the body under that key) or the query's
fields. The reply carries the same model as the HTTP reply, in a `result` frame.
"""

from typing import Any

from pydantic import TypeAdapter, ValidationError

from schemas.calls import CallOp, CallReply
from schemas.ops import BY_NAME, CALL_NAMES, Op
from server.core.errors import InvalidRequest
from server.web.context import Socket
from server.web.errors import from_validation
from server.web.invoke import Plan, invoke, plan
from server.web.paths import args_model, variables

PLANS: dict[str, Plan] = {name: plan(BY_NAME[name]) for name in CALL_NAMES}


def _adapter(op: Op) -> TypeAdapter[Any] | None:
    model = op.body if op.body is not None else op.query
    return None if model is None else TypeAdapter(model)


ADAPTERS = {name: _adapter(BY_NAME[name]) for name in CALL_NAMES}


async def call(conn: Socket, frame: CallOp) -> CallReply:
    op = BY_NAME[frame.op]
    path, request = _read(op, dict(frame.args))
    data = await invoke(PLANS[op.name], conn.svc, conn.caller, path, request)
    return CallReply(op=frame.op, id=frame.id, data=data.model_dump(mode="json"))


def _read(op: Op, args: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(path variables, request) from a call's args; raises InvalidRequest."""
    names = [name for name, _ in variables(op.path)]
    try:
        path = args_model(op.path).model_validate({n: args.pop(n) for n in names if n in args})
        if op.body_field is not None:
            args = args.pop(op.body_field, {})
        request = _validated(ADAPTERS[op.name], args)
    except ValidationError as exc:
        raise from_validation(exc) from None
    return {n: getattr(path, n) for n in names}, request


def _validated(adapter: TypeAdapter[Any] | None, args: dict[str, Any]) -> Any:
    """The request; an op that takes none refuses args it would ignore."""
    if adapter is not None:
        return adapter.validate_python(args)
    if args:
        raise InvalidRequest("this op takes no such args", unexpected=sorted(args)[:16])
    return None
