"""Masks never need torch: the library, ``wmi masks generate`` and ``wmi masks stats`` run in a
fresh interpreter without importing it (issue 12, part 3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, cwd: Path) -> str:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_mask_library_does_not_import_torch(tmp_path: Path) -> None:
    code = """
import sys
from wmi.masks import MaskSetSpec, mask_folder_stats, write_mask_set
write_mask_set("set", MaskSetSpec("freeform", 32, 32, count=3), workers=1)
mask_folder_stats("set")
print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
"""
    assert run_python(code, tmp_path) == "[]"


def test_the_masks_commands_do_not_import_torch(tmp_path: Path) -> None:
    if run_python("import sys, wmi.cli; print('torch' in sys.modules)", tmp_path) == "True":
        pytest.skip("importing wmi.cli itself imports torch (another command's module)")
    code = """
import sys
from typer.testing import CliRunner
from wmi.cli import app
runner = CliRunner()
for args in (
    ["--help"],
    ["masks", "generate", "--help"],
    ["masks", "generate", "set", "--kind", "thin", "--count", "3", "--size", "32"],
    ["masks", "stats", "set", "--json"],
):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
"""
    assert run_python(code, tmp_path) == "[]"
