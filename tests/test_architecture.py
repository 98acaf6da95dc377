"""The structure issue 12 asked for, kept by tests: small files and functions, a torch-free CLI."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "wmi"
MAX_FILE_LINES = 700
MAX_FUNCTION_LINES = 80


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_file_over_700_lines() -> None:
    long = {str(p.relative_to(PACKAGE)): n for p in _sources()
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}  # fmt: skip
    assert not long


def test_no_function_over_80_lines() -> None:
    long = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE)}:{node.name}"] = lines
    assert not long


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          check=False)  # fmt: skip


@pytest.mark.parametrize(
    "code",
    [
        "import wmi.cli",
        "import wmi.kinds, wmi.registry",
        "from wmi.cli import app; app(['--help'], prog_name='wmi', standalone_mode=False)",
        "from wmi.cli import app; app(['train', '--help'], prog_name='wmi', standalone_mode=False)",
    ],
)
def test_the_command_line_does_not_import_torch(code: str) -> None:
    probe = _fresh_python(f"{code}\nimport sys\nprint('torch' in sys.modules)")
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().splitlines()[-1] == "False"
