"""The folder tree is the architecture: packages in the order data flows, no import cycles,
nothing importing upward, and a command line that starts without torch.

The import graph is read from the source (every ``import`` anywhere in a file, functions
included: an import inside a function is a dependency too), not from ``sys.modules``.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "wmi"

#: The stages from the bottom up. A module may import modules of its own stage and of the
#: stages before it, never of a later one. The core is a set of top-level modules.
CORE = ("wmi.errors", "wmi.registry", "wmi.kinds", "wmi.progress", "wmi.procs", "wmi.device",
        "wmi.weights")  # fmt: skip
STAGES = ("core", "wmi.io", "wmi.masks", "wmi.layers", "wmi.models", "wmi.data", "wmi.inpaint",
          "wmi.eval", "wmi.training", "wmi.bench", "wmi.experiments", "wmi.cli", "api")  # fmt: skip
#: The public face: ``import wmi``, ``wmi.functional`` and ``python -m wmi`` may use anything.
API = ("wmi", "wmi.functional", "wmi.__main__")
MAX_TOP_LEVEL_MODULES = 8


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The wmi modules ``name`` imports (the deepest known module of each imported name)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets += [base] + [f"{base}.{alias.name}" for alias in node.names]
    found = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        # ``from wmi import __version__`` reads the package's version, nothing else
        if target and target != name and target != "wmi":
            found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, path, set(mods)) for name, path in mods.items()}


def stage_of(name: str) -> int:
    if name in API:
        return STAGES.index("api")
    if name in CORE:
        return STAGES.index("core")
    package = ".".join(name.split(".")[:2])
    assert package in STAGES, f"{name}: in no stage of tests/test_architecture.py"
    return STAGES.index(package)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_module_imports_a_later_stage() -> None:
    upward = [
        f"{name} -> {target}"
        for name, targets in import_graph().items()
        for target in targets
        if stage_of(target) > stage_of(name)
    ]
    assert upward == []


def test_every_module_belongs_to_a_stage() -> None:
    for name in modules():
        stage_of(name)


def test_few_modules_sit_directly_in_wmi() -> None:
    top = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(top) <= MAX_TOP_LEVEL_MODULES, sorted(top)


def test_nothing_cites_a_file_outside_the_repository() -> None:
    """The project's notes on the paper are docs/paper.md; no file points outside the repo."""
    outside = ("REFERENCE" + ".md", "../" + "shared")
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=False).stdout.split()  # fmt: skip
    if not tracked:
        pytest.skip("not a git checkout")
    cites = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in (".py", ".md", ".toml", ".sh", ".txt"):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        cites += [f"{name}: {needle}" for needle in outside if needle in text]
    assert cites == []


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=False)  # fmt: skip


@pytest.mark.parametrize(
    "code",
    [
        "import wmi.cli",
        "import wmi.kinds, wmi.registry, wmi.progress, wmi.procs, wmi.weights",
        "from wmi.cli import app; app(['--help'], prog_name='wmi', standalone_mode=False)",
        "from wmi.cli import app; app(['train', '--help'], prog_name='wmi', standalone_mode=False)",
    ],
)
def test_the_command_line_does_not_import_torch(code: str) -> None:
    probe = _fresh_python(f"{code}\nimport sys\nprint('torch' in sys.modules)")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "False"
