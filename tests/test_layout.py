"""The layout holds: arrows point one way, no import cycle, SQL only in stores.

Each rule is a function over source text, so each is also shown to fail on a
small tree broken on purpose."""

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).parent.parent
CAPABILITIES = (
    "auth",
    "learning",
    "hub",
    "kb",
    "strategy",
    "performance",
    "chat",
    "workflows",
    "training",
)
SHARED = ("core", "db", "web")
WIRING = ("server.app", "server.stores", "server.cli", "server.cli_jobs", "server.runner")
SQL = re.compile(
    r"^\s*(SELECT\s|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX))"
)


def sources(root: Path = ROOT) -> dict[str, str]:
    """Module name → source text, for the packages that ship."""
    found: dict[str, str] = {}
    for package in ("server", "schemas", "client"):
        for path in sorted((root / package).rglob("*.py")):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path.read_text()
    return found


def imports(source: str, name: str, known: Iterable[str]) -> set[str]:
    """Every module of `known` that `source` imports, at any depth of the file
    (TYPE_CHECKING blocks and function bodies included)."""
    modules = set(known)
    found: set[str] = set()
    package = name if name in modules and _is_package(name, modules) else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(_nearest(a.name, modules) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else _nearest(base, modules))
    found.discard("")
    found.discard(name)
    return found


def _is_package(name: str, modules: set[str]) -> bool:
    return any(m.startswith(name + ".") for m in modules)


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _nearest(name: str, modules: set[str]) -> str:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def graph(mods: Mapping[str, str]) -> dict[str, set[str]]:
    return {name: imports(text, name, mods) for name, text in mods.items()}


def cycle(edges: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle, if any (depth-first search, three colours)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def room(module: str) -> str:
    """The capability or shared folder a module lives in ("" for the top)."""
    parts = module.split(".")
    return parts[1] if parts[0] == "server" and len(parts) > 2 else ""


def wrong_arrows(edges: Mapping[str, set[str]]) -> Iterator[str]:
    for src, targets in sorted(edges.items()):
        for dst in sorted(targets):
            if reason := _refusal(src, dst):
                yield f"{src} → {dst}: {reason}"


def _refusal(src: str, dst: str) -> str | None:
    top, leaf = src.split(".")[0], src.rpartition(".")[2]
    if top == "schemas" and not dst.startswith("schemas"):
        return "the contract imports only itself"
    if top == "client" and dst.startswith("server"):
        return "the SDK never imports the server"
    if top != "server" or not dst.startswith("server"):
        return None
    here, there = room(src), room(dst)
    if dst.startswith("server.web") and here not in ("web", "") and src not in WIRING:
        return "only web and the wiring import web"
    if here == "core" and there != "core":
        return "core imports only core and schemas"
    if here == "db" and there not in ("core", "db"):
        return "db imports only core, db and schemas"
    if leaf == "store" and there not in ("core", "db", here):
        return "a store imports only its own capability, core, db and schemas"
    if dst.rpartition(".")[2] == "store" and here == there and leaf not in _DRIVERS:
        return "a pure module never imports its store"
    return None


_DRIVERS = {"service", "store", "extractor", "miner_host", "channels", "messages", "alerts"}
"""Modules that drive a capability's pure parts and reach its store."""


def sql_outside_stores(mods: Mapping[str, str]) -> Iterator[str]:
    for name, text in sorted(mods.items()):
        if name.endswith(".store") or room(name) == "db":
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if SQL.match(node.value):
                    yield f"{name}: {node.value.strip()[:60]!r}"


def no_aiohttp_in_services(mods: Mapping[str, str]) -> Iterator[str]:
    for name, text in sorted(mods.items()):
        if name.startswith("server") and room(name) in (*CAPABILITIES, "core", "db"):
            if re.search(r"^\s*(import|from) aiohttp", text, re.M):
                yield name


# -- the tree as it is ---------------------------------------------------------


def test_every_capability_and_shared_room_exists() -> None:
    for folder in (*CAPABILITIES, *SHARED):
        assert (ROOT / "server" / folder / "__init__.py").exists(), folder
    for folder in CAPABILITIES:
        assert (ROOT / "server" / folder / "service.py").exists(), folder


def test_there_is_no_import_cycle() -> None:
    assert cycle(graph(sources())) is None


def test_there_is_no_cycle_between_rooms() -> None:
    edges: dict[str, set[str]] = {}
    for src, targets in graph(sources()).items():
        if room(src) in (*CAPABILITIES, *SHARED):
            rooms = {room(t) for t in targets if room(t) in (*CAPABILITIES, *SHARED)}
            edges.setdefault(room(src), set()).update(rooms - {room(src)})
    assert cycle(edges) is None


def test_arrows_point_one_way() -> None:
    assert list(wrong_arrows(graph(sources()))) == []


def test_sql_lives_only_in_stores_and_db() -> None:
    assert list(sql_outside_stores(sources())) == []


def test_capabilities_and_core_never_import_aiohttp() -> None:
    assert list(no_aiohttp_in_services(sources())) == []


# -- the rules fail when the tree is broken on purpose ---------------------------

BROKEN = {
    "server.learning.miner": "from server.workflows.mining import WorkflowPattern\n",
    "server.workflows.mining": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from server.learning.miner import Miner\n"
    ),
    "server.hub.store": "from server.learning.index import Entry\n",
    "server.hub.ranking": "from server.hub.store import HubStore\n",
    "server.core.clock": "from server.hub.store import HubStore\n",
    "server.kb.consolidate": 'QUERY = "SELECT id FROM kb_items"\n',
    "server.hub.service": "from aiohttp import web\n",
    "schemas.hub": "from server.core.clock import utc\n",
    "server.core.stats": "",
    "server.learning.index": "",
}


def test_a_cycle_through_a_type_checking_import_is_found() -> None:
    found = cycle(graph(BROKEN))
    assert found is not None and set(found) == {"server.learning.miner", "server.workflows.mining"}


def test_wrong_arrows_are_named() -> None:
    wrong = "\n".join(wrong_arrows(graph(BROKEN)))
    assert "server.hub.store → server.learning.index" in wrong
    assert "server.hub.ranking → server.hub.store" in wrong
    assert "server.core.clock → server.hub.store" in wrong
    assert "schemas.hub → server.core.clock" in wrong


def test_sql_outside_a_store_is_found() -> None:
    assert [s.split(":")[0] for s in sql_outside_stores(BROKEN)] == ["server.kb.consolidate"]


def test_aiohttp_in_a_service_is_found() -> None:
    assert list(no_aiohttp_in_services(BROKEN)) == ["server.hub.service"]
