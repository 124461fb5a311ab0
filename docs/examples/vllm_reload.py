"""Hot-reload Kaizen's promoted adapters into a running vLLM server, with no downtime.

    VLLM_ALLOW_RUNTIME_LORA_UPDATING=True vllm serve BASE_MODEL --enable-lora --max-loras 2
    python docs/examples/vllm_reload.py --kaizen http://127.0.0.1:8080 --vllm http://127.0.0.1:8000

It subscribes to the tenant's `models` channel. On each `promoted` or
`rolled_back` event it downloads that version's tar.gz, unpacks it, and asks vLLM
to load it under a new name, `kaizen-<version>` (`POST /v1/load_lora_adapter`).
Requests that name `model: "kaizen-v000007"` use it at once; requests in flight on
the previous adapter finish on it. After `--grace-s` the previous name is unloaded
(`POST /v1/unload_lora_adapter`). A new name per version is what makes the switch
safe: vLLM caches adapters by name, so reloading one name would serve stale weights.
Clients find the current name with `GET /models` (`current`) or from this script's
output. On start it loads the current version, so a restart catches up.
"""

import argparse
import asyncio
import io
import tarfile
from pathlib import Path

import aiohttp
import orjson

from client import KaizenClient
from schemas.training import ModelEvent


def adapter_name(version: str) -> str:
    return f"kaizen-{version}"


async def fetch(kz: KaizenClient, version: str, root: Path) -> Path:
    """Download and unpack a version; returns the PEFT directory."""
    target = root / version
    if not (target / "adapter_config.json").exists():
        archive = tarfile.open(fileobj=io.BytesIO(await kz.download_model(version)))
        archive.extractall(root / f".{version}", filter="data")
        unpacked = next((root / f".{version}").rglob("adapter_config.json")).parent
        unpacked.rename(target)
    return target


async def load(vllm: aiohttp.ClientSession, version: str, path: Path) -> None:
    body = {"lora_name": adapter_name(version), "lora_path": str(path)}
    async with vllm.post("/v1/load_lora_adapter", json=body) as resp:
        if resp.status >= 400 and "already" not in (await resp.text()):
            raise RuntimeError(f"vLLM refused {version}: {resp.status} {await resp.text()}")


async def unload_later(vllm: aiohttp.ClientSession, version: str, grace_s: float) -> None:
    await asyncio.sleep(grace_s)
    async with vllm.post("/v1/unload_lora_adapter", json={"lora_name": adapter_name(version)}):
        pass


async def follow(kaizen: str, token: str | None, vllm_url: str, root: Path, grace_s: float) -> None:
    root.mkdir(parents=True, exist_ok=True)
    async with KaizenClient(kaizen, token=token) as kz, aiohttp.ClientSession(vllm_url) as vllm:
        serving = (await kz.list_models()).current
        if serving is not None:
            await load(vllm, serving, await fetch(kz, serving, root))
            print(f"serving {adapter_name(serving)}", flush=True)
        async with kz.subscribe("models") as events:
            async for push in events:
                event = ModelEvent.model_validate(orjson.loads(push.data.content))
                if event.version is None or event.version == serving:
                    continue
                await load(vllm, event.version, await fetch(kz, event.version, root))
                print(f"serving {adapter_name(event.version)} ({event.event})", flush=True)
                if serving is not None:
                    asyncio.get_running_loop().create_task(unload_later(vllm, serving, grace_s))
                serving = event.version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kaizen", default="http://127.0.0.1:8080")
    parser.add_argument("--token", default=None)
    parser.add_argument("--vllm", default="http://127.0.0.1:8000")
    parser.add_argument("--dir", type=Path, default=Path("./adapters"))
    parser.add_argument("--grace-s", type=float, default=30.0)
    args = parser.parse_args()
    asyncio.run(follow(args.kaizen, args.token, args.vllm, args.dir, args.grace_s))


if __name__ == "__main__":
    main()
