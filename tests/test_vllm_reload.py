"""docs/examples/vllm_reload.py against a stand-in for vLLM's runtime LoRA API:
each promoted version is loaded under a new name, the previous one unloaded after
the grace period."""

import asyncio
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from client import KaizenClient
from schemas.training import JobState
from server.runner import KaizenServer
from server.training.tiny import build_tiny_llama
from tests.conftest import eventually, settings_for
from tests.test_training_service import finished, teach, training_settings

SCRIPT = Path(__file__).parent.parent / "docs" / "examples" / "vllm_reload.py"


def reload_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("vllm_reload", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_vllm(calls: list[tuple[str, dict[str, Any]]]) -> web.Application:
    """vLLM's two runtime LoRA endpoints, recording what they are asked."""

    async def load(request: web.Request) -> web.Response:
        body = await request.json()
        assert (Path(body["lora_path"]) / "adapter_model.safetensors").exists()
        calls.append(("load", body))
        return web.Response(text="Success")

    async def unload(request: web.Request) -> web.Response:
        calls.append(("unload", await request.json()))
        return web.Response(text="Success")

    app = web.Application()
    app.router.add_post("/v1/load_lora_adapter", load)
    app.router.add_post("/v1/unload_lora_adapter", unload)
    return app


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-reload"))


async def test_promotions_reach_vllm_under_new_names(tmp_path: Path, tiny_model: Path) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    vllm = TestServer(fake_vllm(calls))
    await vllm.start_server()
    server = KaizenServer(settings_for(tmp_path / "data", **training_settings(tiny_model)))
    await server.start()
    follower: asyncio.Task[None] | None = None
    try:
        async with KaizenClient(server.url) as kz:
            await teach(kz)
            script = reload_script()
            follower = asyncio.create_task(
                script.follow(server.url, None, str(vllm.make_url("")), tmp_path / "adapters", 0.1)
            )
            await asyncio.sleep(0.5)  # subscribed
            first = await finished(kz, (await kz.fine_tune()).id)
            second = await finished(kz, (await kz.fine_tune()).id)
            assert first.state is second.state is JobState.SUCCEEDED
            assert first.result is not None and second.result is not None
            old, new = first.result.version, second.result.version
            if not first.result.promoted:
                await kz.promote_model(old)

            def adapters(kind: str) -> set[str]:
                return {body["lora_name"] for k, body in calls if k == kind}

            await eventually(lambda: _true("kaizen-" + old in adapters("load")))
            await kz.promote_model(new)
            await eventually(lambda: _true("kaizen-" + new in adapters("load")))
            await eventually(lambda: _true("kaizen-" + old in adapters("unload")))
    finally:
        if follower is not None:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)
        await server.stop()
        await vllm.close()


async def _true(value: bool) -> bool:
    return value
