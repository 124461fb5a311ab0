"""docs/settings.md, written from the Settings object: `python -m server.core.settings_doc`."""

import sys
from pathlib import Path
from typing import Any

from server.core.settings import ENV_PREFIX, Settings

HEADER = """# Settings

One pydantic object (`server/core/settings.py`) holds the configuration: the
defaults below, then `KAIZEN_*` environment variables, then the flags of
`kaizen serve`. This page is generated from that object
(`python -m server.core.settings_doc > docs/settings.md`), and a test keeps it so.

| Flag | Environment | Default | Meaning |
| --- | --- | --- | --- |
"""


def _default(value: Any) -> str:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def markdown() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        meaning = (field.description or "").replace("|", "\\|")
        default = _default(field.default)
        rows.append(f"| `{flag}` | `{ENV_PREFIX}{name.upper()}` | `{default}` | {meaning} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
