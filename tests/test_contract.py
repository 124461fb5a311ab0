"""The contract: settings, OpenAPI and the README agree with the code."""

from pathlib import Path

import pytest

from client import KaizenClient
from server.core.settings import Settings
from server.web.http import ROUTES

README = Path(__file__).parent.parent / "README.md"


def test_env_overrides_defaults_and_flags_override_env(tmp_path: Path) -> None:
    env = {"KAIZEN_PORT": "9000", "KAIZEN_MIN_SUPPORT": "5", "KAIZEN_DATA_DIR": str(tmp_path)}
    settings = Settings.load({"port": "9100"}, env=env)
    assert (settings.port, settings.min_support, settings.data_dir) == (9100, 5, tmp_path)
    assert Settings.load(env={}).port == 8080


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Settings.load({"cluster_similarity": "2"}, env={})


def test_every_setting_is_documented_in_the_readme() -> None:
    text = README.read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert f"KAIZEN_{name.upper()}" in text, f"README lacks KAIZEN_{name.upper()}"


async def test_openapi_lists_every_route_and_resolves_its_refs(kz: KaizenClient) -> None:
    async with kz.http.get("/openapi.json") as resp:
        doc = await resp.json()
    for route in ROUTES:
        path = route.path.replace(r"{id:\d+}", "{id}")
        assert route.method.lower() in doc["paths"][path]
    text = str(doc)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in doc["components"]["schemas"], ref
