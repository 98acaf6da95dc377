from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any

from rich.console import Console

from wmi.eval import report
from wmi.eval.metrics import Results
from wmi.kinds import METRICS

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden_report.txt"


def _metrics(l1: float, l2: float, tv: float, ssim: float, psnr: float) -> dict[str, float]:
    return {"l1": l1, "l2": l2, "tv": tv, "ssim": ssim, "psnr": psnr}


def _results() -> Results:
    """Two methods; WConv reproduced one hole exactly; PConv has no image in 50-60 %."""
    return {
        "ssim_window": "gaussian",
        "methods": [
            {
                "name": "WConv",
                "images": 3,
                "psnr_infinite": 1,
                "metrics": _metrics(7.755, 2.494, 2.4, 0.854, 43.0),
                "buckets": [
                    {
                        "range": "0-10%",
                        "images": 2,
                        "psnr_infinite": 1,
                        "metrics": _metrics(3.0, 1.0, 1.25, 0.95, 57.0),
                    },
                    {
                        "range": "50-60%",
                        "images": 1,
                        "psnr_infinite": 0,
                        "metrics": _metrics(17.265, 5.482, 4.7, 0.662, 15.0),
                    },
                ],
            },
            {
                "name": "PConv",
                "images": 2,
                "psnr_infinite": 0,
                "metrics": _metrics(10.4644, 2.69, 2.534, 0.854, 17.411),
                "buckets": [
                    {
                        "range": "0-10%",
                        "images": 2,
                        "psnr_infinite": 0,
                        "metrics": _metrics(10.4644, 2.69, 2.534, 0.854, 17.411),
                    }
                ],
            },
        ],
    }


def _render(results: Results, **kwargs: Any) -> str:
    buffer = io.StringIO()
    kwargs.setdefault("color_system", None)
    console = Console(file=buffer, width=80, **kwargs)
    report.render(results, console)
    return buffer.getvalue()


def test_rendering_matches_the_golden_file() -> None:
    text = _render(_results())
    if os.environ.get("WMI_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8")


def test_table_content() -> None:
    text = _render(_results())
    for label in ("L1 (%) ↓", "L2 (%) ↓", "TV ↓", "SSIM ↑", "hole PSNR (dB) ↑", "images"):
        assert label in text
    assert "10.464" in text and "10.4644" not in text  # three decimals
    assert "inf" not in text  # means are finite
    flat = " ".join(text.split())
    assert "SSIM window: gaussian 11x11 σ=1.5." in flat
    assert "capped at 100 dB" in flat and "exact holes: WConv 1" in flat
    no_exact = _results()
    no_exact["methods"] = no_exact["methods"][1:]
    assert "capped" not in _render(no_exact) and "SSIM window" in _render(no_exact)
    uniform = {**_results(), "ssim_window": "uniform"}
    assert "SSIM window: uniform 7x7" in " ".join(_render(uniform).split())
    lines = text.splitlines()
    row = next(x for x in lines if "50-60%" in x)
    assert [cell.strip() for cell in row.split("│")[3:5]] == ["1", "-"]  # PConv has none
    assert lines.index(next(x for x in lines if "0-10%" in x)) < lines.index(
        next(x for x in lines if "50-60%" in x)
    )


def _bold_cells(results: Results) -> set[tuple[str, str, str]]:
    """(range, row, method) of the cells the rich table styles bold."""
    table = report.build_table(results)
    names = [c.header for c in table.columns]
    holes, rows = list(table.columns[0].cells), list(table.columns[1].cells)
    current = ""
    bold = set()
    for i, row in enumerate(rows):
        current = str(holes[i]) or current
        for column, name in zip(table.columns[2:], names[2:], strict=True):
            cell = list(column.cells)[i]
            if "bold" in str(cell.style):
                bold.add((current, str(row), name))
    return bold


def test_best_of_each_row_is_bold() -> None:
    bold = _bold_cells(_results())
    assert ("all", "L1 (%) ↓", "WConv") in bold  # lower is better
    assert ("all", "L1 (%) ↓", "PConv") not in bold
    assert ("all", "hole PSNR (dB) ↑", "WConv") in bold  # 43 beats 17.411
    assert {("all", "SSIM ↑", "WConv"), ("all", "SSIM ↑", "PConv")} <= bold  # a tie
    assert not any(row == "images" for _, row, _ in bold)
    assert not any(rng == "50-60%" for rng, _, _ in bold)  # only one method there
    ansi = _render(_results(), color_system="standard", force_terminal=True)
    assert "\x1b[1m 7.755\x1b[0m" in ansi and "\x1b[1m 10.464" not in ansi


def test_single_method_has_no_bold() -> None:
    one: Results = {"ssim_window": "gaussian", "methods": _results()["methods"][:1]}
    assert _bold_cells(one) == set()


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_json_schema_and_undefined_values_as_null() -> None:
    results = _results()
    results["methods"][1]["metrics"]["tv"] = math.nan  # not finite: null
    data = _strict_json(report.to_json(results))
    assert list(data) == ["ssim_window", "methods"] and data["ssim_window"] == "gaussian"
    for method in data["methods"]:
        assert isinstance(method["name"], str)
        assert isinstance(method["images"], int) and isinstance(method["psnr_infinite"], int)
        assert set(method["metrics"]) == set(METRICS)
        for bucket in method["buckets"]:
            assert set(bucket) == {"range", "images", "psnr_infinite", "metrics"}
            assert set(bucket["metrics"]) == set(METRICS)
    wconv, pconv = data["methods"]
    assert wconv["metrics"]["psnr"] == 43.0 and wconv["psnr_infinite"] == 1
    assert pconv["metrics"]["tv"] is None
    assert wconv["buckets"][1]["metrics"]["psnr"] == 15.0
    assert pconv["metrics"]["l1"] == 10.4644  # full precision, not the table's rounding
    for method in data["methods"]:
        for key in ("l1", "l2", "ssim", "psnr"):
            assert isinstance(method["metrics"][key], float)


def test_csv_carries_every_method_and_range() -> None:
    rows = list(csv.DictReader(io.StringIO(report.to_csv(_results()))))
    assert [(r["method"], r["range"]) for r in rows] == [
        ("WConv", "all"),
        ("WConv", "0-10%"),
        ("WConv", "50-60%"),
        ("PConv", "all"),
        ("PConv", "0-10%"),
    ]
    assert list(rows[0]) == list(report.csv_columns(_results()))
    assert rows[0]["psnr"] == "43.000" and rows[0]["psnr_infinite"] == "1"
    assert rows[2]["l1"] == "17.265" and rows[2]["images"] == "1"
    assert rows[3]["l1"] == "10.464"


def test_markdown_table() -> None:
    text = report.to_markdown(_results())
    lines = text.splitlines()
    assert lines[0] == "| holes | metric | WConv | PConv |"
    assert lines[1] == "|---|---|---:|---:|"
    assert len(lines) == 2 + 3 * 6 + 3  # three sections of an images row and five metric
    # rows, then a blank line and the notes: the SSIM window and the exact holes
    assert lines[-2:] == report.notes(_results()) and lines[-3] == ""
    assert lines[-2] == "SSIM window: gaussian 11x11 σ=1.5."
    assert "| all | images | 3 | 2 |" in lines
    assert "|  | L1 (%) ↓ | **7.755** | 10.464 |" in lines
    assert "|  | hole PSNR (dB) ↑ | **43.000** | 17.411 |" in lines
    assert "| 50-60% | images | 1 | - |" in lines
    assert all(line.count("|") == 5 for line in lines[:-3])


def test_latex_table_escapes_and_marks_best() -> None:
    results = _results()
    results["methods"][1]["name"] = "P_Conv & 50%"
    text = report.to_latex(results)
    assert r"Holes & Metric & WConv & P\_Conv \& 50\% \\" in text
    assert r"\textbf{43.000}" in text
    assert r"SSIM window: gaussian 11x11 $\sigma$=1.5." in text
    assert r"capped at 100 dB" in text
    assert r"\textbf{7.755} & 10.464" in text
    assert r"50-60\% & images & 1 & -- \\" in text
    assert text.count(r"\begin{") == text.count(r"\end{") == 2
    assert text.count(r"\midrule") == 3


def test_markdown_escapes_pipes() -> None:
    results = _results()
    results["methods"][0]["name"] = "a|b"
    assert "| holes | metric | a\\|b | PConv |" in report.to_markdown(results)
