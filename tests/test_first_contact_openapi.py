"""The live /openapi.json is a valid OpenAPI 3.1 document that says what the
server accepts, and a bounded schemathesis run over every operation finds no
5xx and no reply that breaks the document."""

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator

from client import KaizenClient
from server.runner import KaizenServer
from tests.conftest import make_tokens
from tests.procs import ServerProcess

# Checks about the server's side of the contract. positive_data_acceptance is
# left out: cross-field rules ("a and b must differ") and opaque cursors cannot
# be written in JSON Schema, so schema-valid requests may rightly get a 4xx.
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"


async def _document(server: KaizenServer) -> dict[str, Any]:
    async with KaizenClient(server.url) as kz, kz.http.get("/openapi.json") as resp:
        assert resp.status == 200
        doc: dict[str, Any] = await resp.json()
        return doc


def _operation(doc: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = doc["paths"][path][method]
    return op


def _params(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op.get("parameters", [])}


async def test_the_live_document_passes_openapi_spec_validator(server: KaizenServer) -> None:
    errors = [e.message for e in OpenAPIV31SpecValidator(await _document(server)).iter_errors()]
    assert errors == []


async def test_every_ref_resolves_inside_components(server: KaizenServer) -> None:
    doc = await _document(server)
    text = str(doc)
    assert "#/$defs/" not in text
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in doc["components"]["schemas"], ref


async def test_paths_carry_no_regex_and_ids_are_integers(server: KaizenServer) -> None:
    doc = await _document(server)
    assert all("}}" not in p and ":" not in p for p in doc["paths"])
    channel = _params(_operation(doc, "get", "/channels/{name}"))["name"]
    assert channel["schema"]["type"] == "string" and "pattern" in channel["schema"]
    job_id = _params(_operation(doc, "get", "/jobs/{job_id}"))["job_id"]
    assert job_id["required"] is True and job_id["schema"]["type"] == "integer"


async def test_required_query_parameters_are_marked(server: KaizenServer) -> None:
    doc = await _document(server)
    search = _params(_operation(doc, "get", "/memory/search"))
    assert search["query"]["required"] is True
    assert search["limit"]["required"] is False
    compare = _params(_operation(doc, "get", "/performance/compare"))
    assert compare["a"]["required"] and compare["b"]["required"]


async def test_query_values_are_never_null_and_cursors_are_opaque_text(
    server: KaizenServer,
) -> None:
    """A query string cannot carry JSON null; a null branch gets sent as "null"."""
    doc = await _document(server)
    learnings = _params(_operation(doc, "get", "/learnings"))
    for param in learnings.values():
        assert "null" not in str(param["schema"]), param
    assert learnings["cursor"]["schema"]["type"] == "string"
    assert learnings["limit"]["schema"]["type"] == "integer"
    since = learnings["since"]["schema"]["anyOf"]
    assert {"type": "number"} in since  # the server parses Unix seconds too


async def test_bodies_with_all_fields_defaulted_are_optional(server: KaizenServer) -> None:
    doc = await _document(server)
    assert _operation(doc, "post", "/kb/prune")["requestBody"]["required"] is False
    assert _operation(doc, "post", "/jobs/fine-tune")["requestBody"]["required"] is False
    assert _operation(doc, "post", "/interactions")["requestBody"]["required"] is True
    async with KaizenClient(server.url) as kz, kz.http.post("/kb/prune") as resp:
        assert resp.status == 200  # the optional body really may be left out


@pytest.mark.timeout(600)
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    tmp_path: Path,
) -> None:
    pytest.importorskip("schemathesis")
    data = tmp_path / "data"
    (token,) = await make_tokens(data, ("acme", "fuzzer"))
    server = ServerProcess(data)
    url = await server.start()
    try:
        result = await asyncio.to_thread(_schemathesis, url, token, tmp_path)
    finally:
        await server.terminate()
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]


def _schemathesis(url: str, token: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A few examples per operation and a fixed seed: bounded, and the same cases
    # on every run, so a failure here is a regression, not bad luck.
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        "3",
        "--seed",
        "1",
        "--phases",
        "examples,coverage,fuzzing",
        "--no-shrink",
    ]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=540)
