"""The Table I report: a rich table for the terminal and JSON, CSV, Markdown and LaTeX exports.

Every function here is a pure function of a results structure (what
:func:`wmi.metrics.summarize_scores` returns, the same shape as the JSON export)::

    {"methods": [{"name": str, "images": int, "psnr_infinite": int,
                  "metrics": {"l1": float, "l2": float, "tv": float, "ssim": float,
                              "psnr": float},
                  "buckets": [{"range": "0-10%", "images": int, "psnr_infinite": int,
                               "metrics": {...}}, ...]}]}

An infinite PSNR (a hole reproduced exactly) is ``math.inf`` in memory, ``inf`` in the table,
CSV and Markdown, ``$\\infty$`` in LaTeX and ``null`` in JSON, where it is the only value that
can be ``null`` (``Infinity`` is not JSON). ``psnr_infinite`` counts the images behind it.

Rows, labels (terminal, Markdown, LaTeX) and which direction is best come from
:data:`wmi.kinds.METRICS`: a registered metric appears in every format with no change here.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from wmi.kinds import METRICS
from wmi.metrics import BUCKETS, Results

TITLE = "Table I: hole metrics"
#: Shown under the table when some PSNR is infinite.
INF_NOTE = "inf: a hole reproduced exactly"
MISSING = "-"
#: The CSV columns before one column per metric.
CSV_FIXED_COLUMNS = ("method", "range", "images", "psnr_infinite")


def metric_keys(results: Results) -> list[str]:
    """The metrics the results hold, in :data:`wmi.kinds.METRICS` order."""
    held = results["methods"][0]["metrics"] if results["methods"] else {}
    return [key for key in METRICS if key in held]


def csv_columns(results: Results) -> tuple[str, ...]:
    """The CSV header: :data:`CSV_FIXED_COLUMNS`, then each metric's key."""
    return (*CSV_FIXED_COLUMNS, *metric_keys(results))


def format_value(value: float) -> str:
    """Three decimals as in the paper; ``inf`` for an infinite PSNR."""
    return "inf" if math.isinf(value) else f"{value:.3f}"


def _sections(results: Results) -> Iterator[tuple[str, dict[str, dict[str, Any]]]]:
    """(range label, method name -> its block with "images" and "metrics") per table section.

    The first section is "all"; then each bucket that some method has images in, in order.
    """
    methods = results["methods"]
    yield "all", {m["name"]: dict(m) for m in methods}
    for label in BUCKETS:
        blocks = {m["name"]: dict(b) for m in methods for b in m["buckets"] if b["range"] == label}
        if blocks:
            yield label, blocks


def _rows(results: Results) -> Iterator[tuple[str, str, list[tuple[str, bool]]]]:
    """The table as (range, row key, [(cell text, is best)] per method) rows.

    The row key is "images" or a metric's key (:func:`_label` and :func:`_latex_label` turn it
    into the row's label).

    Each section is an "images" row followed by one row per metric. Cells of methods without
    images in a section read ``MISSING``; the best value is marked only when at least two
    methods have one.
    """
    names = [m["name"] for m in results["methods"]]
    for label, blocks in _sections(results):
        yield (
            label,
            "images",
            [(str(blocks[n]["images"]) if n in blocks else MISSING, False) for n in names],
        )
        for metric in metric_keys(results):
            values = {n: blocks[n]["metrics"][metric] for n in names if n in blocks}
            best = _best(values, metric) if len(values) > 1 else set()
            cells = [
                (format_value(values[n]), n in best) if n in values else (MISSING, False)
                for n in names
            ]
            yield label, metric, cells


def _label(key: str) -> str:
    """The terminal / Markdown row label of "images" or a metric."""
    return key if key == "images" else METRICS[key].label or key


def _latex_label(key: str) -> str:
    """The LaTeX row label of "images" or a metric (its plain label, escaped, if none)."""
    return key if key == "images" else METRICS[key].latex or _tex_escape(_label(key))


def _best(values: dict[str, float], metric: str) -> set[str]:
    target = (max if METRICS[metric].higher_is_better else min)(values.values())
    return {n for n, v in values.items() if v == target}


def build_table(results: Results) -> Table:
    """A rich :class:`~rich.table.Table`: sections "all" then each bucket, best in bold."""
    infinite = any(m["psnr_infinite"] for m in results["methods"])
    table = Table(title=TITLE, caption=INF_NOTE if infinite else None)
    rows = list(_rows(results))
    table.add_column("holes", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    for i, method in enumerate(results["methods"]):
        # Numbers never wrap; a long method name folds in the header instead.
        widest = max(len(cells[i][0]) for _, _, cells in rows)
        table.add_column(method["name"], justify="right", overflow="fold", min_width=widest)
    previous = None
    for label, key, cells in rows:
        if previous is not None and label != previous:
            table.add_section()
        table.add_row(
            label if label != previous else "",
            _label(key),
            *(Text(text, style="bold" if best else "") for text, best in cells),
        )
        previous = label
    return table


def render(results: Results, console: Console) -> None:
    """Print the table to ``console`` (a console narrower than :func:`table_width` crops it)."""
    console.print(build_table(results))


def table_width(results: Results) -> int:
    """Characters the table needs to be shown uncropped, without folding method names."""
    console = Console(width=10_000)
    return Measurement.get(console, console.options, build_table(results)).maximum


def _json_value(value: float) -> float | None:
    return None if math.isinf(value) else value


def to_dict(results: Results) -> dict[str, Any]:
    """The JSON-ready structure: infinite PSNR becomes ``None``."""
    keys = metric_keys(results)

    def block(b: Any) -> dict[str, Any]:
        out = dict(b)
        out["metrics"] = {k: _json_value(b["metrics"][k]) for k in keys}
        return out

    return {
        "methods": [
            {**block(m), "buckets": [block(b) for b in m["buckets"]]} for m in results["methods"]
        ]
    }


def to_json(results: Results) -> str:
    """Strict JSON (no ``Infinity`` or ``NaN``), indented, with a trailing newline."""
    return json.dumps(to_dict(results), indent=2, allow_nan=False) + "\n"


def to_csv(results: Results) -> str:
    """One row per method and range ("all", then each bucket), columns :func:`csv_columns`."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(csv_columns(results))
    keys = metric_keys(results)
    for method in results["methods"]:
        for label, block in [("all", method), *((b["range"], b) for b in method["buckets"])]:
            writer.writerow(
                [
                    method["name"],
                    label,
                    block["images"],
                    block["psnr_infinite"],
                    *(format_value(block["metrics"][k]) for k in keys),
                ]
            )
    return buffer.getvalue()


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def to_markdown(results: Results) -> str:
    """A GitHub-flavoured Markdown table with the same rows as the terminal table."""
    names = [_md_escape(m["name"]) for m in results["methods"]]
    lines = [
        "| holes | metric | " + " | ".join(names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    previous = None
    for label, key, cells in _rows(results):
        shown = label if label != previous else ""
        texts = [f"**{text}**" if best else text for text, best in cells]
        lines.append(f"| {shown} | {_md_escape(_label(key))} | " + " | ".join(texts) + " |")
        previous = label
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _tex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(results: Results) -> str:
    """A booktabs ``table`` environment (needs ``\\usepackage{booktabs}``)."""
    names = [_tex_escape(m["name"]) for m in results["methods"]]
    lines = [
        r"\begin{table}",
        r"\centering",
        r"\begin{tabular}{ll" + "r" * len(names) + "}",
        r"\toprule",
        "Holes & Metric & " + " & ".join(names) + r" \\",
    ]
    previous = None
    for label, key, cells in _rows(results):
        if label != previous:
            lines.append(r"\midrule")
        shown = _tex_escape(label) if label != previous else ""
        texts = []
        for text, best in cells:
            tex = {"inf": r"$\infty$", MISSING: "--"}.get(text, text)
            texts.append(rf"\textbf{{{tex}}}" if best else tex)
        lines.append(f"{shown} & {_latex_label(key)} & " + " & ".join(texts) + r" \\")
        previous = label
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{{_tex_escape(TITLE)}; best in bold.}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"
