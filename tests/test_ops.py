"""The table of operations is the one declaration of the API: the HTTP routes,
the `/ws` calls and frames, /openapi.json, docs/protocol.md and the SDK all
agree with it, and each check fails when broken on purpose."""

import ast
import inspect
import re
import typing
from pathlib import Path

import pytest
from pydantic import ValidationError

from client import KaizenClient
from client._chat import ChatSession
from client._ops import operation_of
from client.socket import KaizenSocket
from schemas.calls import CallOp
from schemas.frames import AnyOp
from schemas.ops import CALL_NAMES, OPS, Op
from server.app import create_app
from server.web.invoke import UnboundOperation, plan, plans
from server.web.ops_doc import PROTOCOL, rewritten
from server.web.paths import split_path
from server.web.system import SYSTEM_HANDLERS
from tests.conftest import settings_for

HTTP_OPS = [op for op in OPS if op.method is not None and op.path is not None]
SDK_CLASSES = (KaizenClient, KaizenSocket, ChatSession)
NOT_OPERATIONS = {"close", "connect", "http", "socket", "request", "call", "id", "log"}
"""Members of the SDK's classes that are lifecycle or plumbing, not operations
(`call` is the generic form of every `call` op)."""


def test_names_and_routes_are_unique() -> None:
    assert len({op.name for op in OPS}) == len(OPS)
    routes = [(op.method, split_path(op.path or "")[0]) for op in HTTP_OPS]
    assert len(set(routes)) == len(routes)


def test_every_service_operation_binds_and_the_rest_have_a_handler() -> None:
    bound = plans()
    answered_by_web = {op.name for op in HTTP_OPS if op.service is None}
    assert answered_by_web == set(SYSTEM_HANDLERS)
    assert set(bound) == {op.name for op in OPS if op.service is not None}
    assert all(op.service is not None for op in OPS if op.ws == "call")


def test_a_method_that_is_missing_or_cannot_be_bound_is_refused() -> None:
    with pytest.raises(UnboundOperation, match="no method"):
        plan(Op("kb_nope", "GET", "/kb/nope", "x", service="kb.nope"))
    with pytest.raises(UnboundOperation, match="nothing binds"):
        plan(Op("kb_get_without_id", "GET", "/kb/items", "x", service="kb.get"))


def test_the_application_routes_are_the_table(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))
    served = {
        (r.method, r.resource.canonical)
        for r in app.router.routes()
        if r.method != "HEAD" and r.resource is not None
    }
    table = {(op.method, split_path(op.path or "")[0]) for op in HTTP_OPS}
    assert served - {("GET", "/ws")} == table


def test_ws_calls_are_the_table_and_nothing_else() -> None:
    for name in CALL_NAMES:
        assert CallOp.model_validate({"id": "1", "op": name}).op == name
    with pytest.raises(ValidationError):
        CallOp.model_validate({"id": "1", "op": "drop_tables"})


def test_every_frame_op_has_a_frame_and_every_frame_an_op() -> None:
    frames: set[str] = set()
    for model in typing.get_args(AnyOp):
        if model is not CallOp:
            frames.update(typing.get_args(model.model_fields["op"].annotation))
    table = {op.ws_op for op in OPS if op.ws == "frame"}
    assert frames == table


async def test_openapi_describes_exactly_the_table(kz: KaizenClient) -> None:
    doc = await kz.openapi()
    described = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    assert described == {(op.method, split_path(op.path or "")[0]) for op in HTTP_OPS}


def test_docs_protocol_lists_the_table() -> None:
    text = PROTOCOL.read_text()
    assert text == rewritten(text), "regenerate: python -m server.web.ops_doc"
    for op in OPS:
        assert f"| `{op.name}` |" in text


# -- the SDK against the table ---------------------------------------------------


def sdk_methods() -> dict[str, object]:
    found: dict[str, object] = {}
    for cls in SDK_CLASSES:
        for name, member in inspect.getmembers(cls):
            if not name.startswith("_") and name not in NOT_OPERATIONS and callable(member):
                found[f"{cls.__name__}.{name}"] = member
    return found


def sent_routes(fn: object) -> set[tuple[str, str]]:
    """The (method, path template) pairs a method's own code names."""
    tree = ast.parse(inspect.getsource(fn).strip().replace("\n    ", "\n"))  # type: ignore[arg-type]
    texts = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.add(node.value)
        elif isinstance(node, ast.JoinedStr):
            texts.add("".join(_text(v) for v in node.values))
    methods = texts & {"GET", "POST", "PATCH", "DELETE"}
    paths = {t for t in texts if t.startswith("/")}
    return {(m, p) for m in methods for p in paths}


def _text(value: ast.expr) -> str:
    return value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else "{}"


def _template(op: Op) -> str:
    return re.sub(r"\{[^}]*\}", "{}", split_path(op.path or "")[0])


def wrong_sdk_methods(methods: dict[str, object], ops: tuple[Op, ...]) -> list[str]:
    by_name = {op.name: op for op in ops}
    wrong = []
    for label, fn in sorted(methods.items()):
        name = operation_of(fn)
        if name not in by_name:
            wrong.append(f"{label} names no operation ({name!r})")
            continue
        op = by_name[name]
        routes = {(m, re.sub(r"\{[^}]*\}", "{}", p)) for m, p in sent_routes(fn)}
        if routes and (op.method, _template(op)) not in routes:
            wrong.append(f"{label} sends {sorted(routes)}, not {op.method} {op.path}")
    return wrong


def uncovered(methods: dict[str, object], ops: tuple[Op, ...]) -> set[str]:
    return {op.name for op in ops} - {operation_of(fn) for fn in methods.values()} - {None}


def test_every_sdk_method_names_an_operation_and_sends_its_route() -> None:
    assert wrong_sdk_methods(sdk_methods(), OPS) == []


def test_every_operation_has_an_sdk_method() -> None:
    assert uncovered(sdk_methods(), OPS) == set()


def test_the_sdk_checks_fail_when_broken_on_purpose() -> None:
    async def untagged() -> None:
        return None

    methods = sdk_methods()
    wrong_route = {
        "KaizenClient.get_job": methods["KaizenClient.get_job"],
    }
    retagged = (*[op for op in OPS if op.name != "get_job"], Op("get_job", "GET", "/x", "x"))
    assert wrong_sdk_methods(wrong_route, retagged) != []
    assert wrong_sdk_methods({"KaizenClient.untagged": untagged}, OPS) != []
    assert "get_job" in uncovered(
        {k: v for k, v in methods.items() if operation_of(v) != "get_job"}, OPS
    )
