"""The contract: settings, OpenAPI and docs/settings.md agree with the code."""

from pathlib import Path

import pytest

from client import KaizenClient
from schemas.ops import OPS
from server.core.settings import Settings
from server.core.settings_doc import markdown
from server.web.paths import split_path

SETTINGS_DOC = Path(__file__).parent.parent / "docs" / "settings.md"


def test_env_overrides_defaults_and_flags_override_env(tmp_path: Path) -> None:
    env = {"KAIZEN_PORT": "9000", "KAIZEN_MIN_SUPPORT": "5", "KAIZEN_DATA_DIR": str(tmp_path)}
    settings = Settings.load({"port": "9100"}, env=env)
    assert (settings.port, settings.min_support, settings.data_dir) == (9100, 5, tmp_path)
    assert Settings.load(env={}).port == 8080


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Settings.load({"cluster_similarity": "2"}, env={})


def test_every_setting_is_documented_in_docs_settings() -> None:
    text = SETTINGS_DOC.read_text()
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert f"KAIZEN_{name.upper()}" in text, f"docs/settings.md lacks KAIZEN_{name.upper()}"
    assert text == markdown(), "regenerate: python -m server.core.settings_doc > docs/settings.md"


async def test_openapi_lists_every_route_and_resolves_its_refs(kz: KaizenClient) -> None:
    async with kz.http.get("/openapi.json") as resp:
        doc = await resp.json()
    for op in OPS:
        if op.method is not None and op.path is not None:
            assert op.method.lower() in doc["paths"][split_path(op.path)[0]], op.name
    text = str(doc)
    for ref in {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}:
        assert ref in doc["components"]["schemas"], ref
