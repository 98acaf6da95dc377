"""The Table I report: a rich table for the terminal and JSON, CSV, Markdown and LaTeX exports.

Every function here is a pure function of a results structure (what
:func:`wmi.eval.metrics.summarize_scores` returns, the same shape as the JSON export)::

    {"ssim_window": "gaussian",
     "methods": [{"name": str, "images": int, "psnr_infinite": int,
                  "metrics": {"l1": float, "l2": float, "tv": float, "ssim": float,
                              "psnr": float},
                  "buckets": [{"range": "0-10%", "images": int, "psnr_infinite": int,
                               "metrics": {...}}, ...]}]}

Every report names the SSIM window (:data:`wmi.kinds.SSIM_WINDOWS`). PSNR is the hole PSNR,
capped at :data:`wmi.eval.metrics.PSNR_CAP` (an exact hole counts as 100 dB), so its means are
finite; ``psnr_infinite`` counts the exact holes, and the reports say how many there were. A
value that is not finite (a metric that is undefined for a group) is ``null`` in JSON, ``-``
elsewhere.

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

from wmi.eval import compare
from wmi.eval.compare import MARKS
from wmi.eval.metrics import BUCKETS, PSNR_CAP, Results
from wmi.kinds import METRICS, NETWORK_METRICS, SSIM_WINDOWS, Metric

TITLE = "Table I: hole metrics"
MISSING = "-"
#: The CSV columns before one column per metric.
CSV_FIXED_COLUMNS = ("method", "range", "images", "psnr_infinite")


def metric_entry(key: str) -> Metric:
    """The registry entry of a metric key: :data:`wmi.kinds.METRICS` or ``NETWORK_METRICS``."""
    return NETWORK_METRICS[key] if key in NETWORK_METRICS and key not in METRICS else METRICS[key]


def metric_keys(results: Results) -> list[str]:
    """The metrics the results hold: :data:`wmi.kinds.METRICS` order, then LPIPS and FID."""
    held = results["methods"][0]["metrics"] if results["methods"] else {}
    return [key for key in (*METRICS, *NETWORK_METRICS) if key in held]


def csv_columns(results: Results) -> tuple[str, ...]:
    """The CSV header: :data:`CSV_FIXED_COLUMNS`, then each metric's key."""
    return (*CSV_FIXED_COLUMNS, *metric_keys(results))


def format_value(value: float) -> str:
    """Three decimals as in the paper; ``-`` for a value that is not finite."""
    return f"{value:.3f}" if math.isfinite(value) else MISSING


def ssim_window_label(results: Results) -> str:
    """How the reports name the results' SSIM window ("gaussian 11x11 σ=1.5")."""
    name = results.get("ssim_window", "")
    return SSIM_WINDOWS[name].label if name in SSIM_WINDOWS else name or "unknown"


#: The same in LaTeX.
_TEX_MARKS = {"better": "$^{+}$", "worse": "$^{-}$"}


def notes(results: Results) -> list[str]:
    """What every report says under its table: the SSIM window; exact holes, if any; what ±
    and the marks mean, when there are any."""
    lines = [f"SSIM window: {ssim_window_label(results)}."]
    runs = {m["name"]: m.get("runs", 1) for m in results["methods"]}
    several = any(n > 1 for n in runs.values())
    exact = {m["name"]: m["psnr_infinite"] for m in results["methods"] if m["psnr_infinite"]}
    if exact:
        counts = ", ".join(f"{name} {n}" for name, n in exact.items())
        lines.append(
            f"Hole PSNR is capped at {PSNR_CAP:g} dB: an exact hole counts as {PSNR_CAP:g} dB "
            f"(exact holes{' over every run' * several}: {counts})."
        )
    if several:
        counts = ", ".join(f"{name} {n}" for name, n in runs.items())
        lines.append(f"Mean over runs ± half-width of its 95% Student-t interval (runs: {counts}).")
    if results.get("comparisons"):
        lines.append(
            f"{MARKS['better']} / {MARKS['worse']}: significantly better / worse than "
            f"{results['baseline']} (the 95% paired bootstrap interval of the per-image "
            "difference excludes 0)."
        )
    return lines


def half_width(block: Any, metric: str) -> float:
    """The half-width of a block's 95% interval of ``metric``; NaN when it has none."""
    low, high = block.get("ci95", {}).get(metric, (math.nan, math.nan))
    return (high - low) / 2 if math.isfinite(low) and math.isfinite(high) else math.nan


def comparison_marks(results: Results) -> dict[tuple[str, str, str], str]:
    """:func:`wmi.eval.compare.comparison_marks` with each metric's registry direction."""
    return compare.comparison_marks(results, lambda key: metric_entry(key).higher_is_better)


def format_cell(value: float, half: float) -> str:
    """``mean ± half`` (three decimals each), or the mean alone without an interval."""
    return f"{format_value(value)} ± {half:.3f}" if math.isfinite(half) else format_value(value)


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


def _rows(results: Results) -> Iterator[tuple[str, str, list[tuple[str, bool, str]]]]:
    """The table as (range, row key, [(cell text, is best, mark)] per method) rows.

    The row key is "images" or a metric's key (:func:`_label` and :func:`_latex_label` turn it
    into the row's label). A cell's text is :func:`format_cell`; its mark is "better",
    "worse" (:func:`comparison_marks`) or "".

    Each section is an "images" row followed by one row per metric. Cells of methods without
    images in a section read ``MISSING``; the best value is marked only when at least two
    methods have one.
    """
    names = [m["name"] for m in results["methods"]]
    marks = comparison_marks(results)
    for label, blocks in _sections(results):
        yield (
            label,
            "images",
            [(str(blocks[n]["images"]) if n in blocks else MISSING, False, "") for n in names],
        )
        for metric in metric_keys(results):
            values = {
                n: blocks[n]["metrics"][metric]
                for n in names
                if n in blocks and math.isfinite(blocks[n]["metrics"][metric])
            }
            best = _best(values, metric) if len(values) > 1 else set()
            cells = [
                (
                    format_cell(values[n], half_width(blocks[n], metric)),
                    n in best,
                    marks.get((n, label, metric), ""),
                )
                if n in values
                else (MISSING, False, "")
                for n in names
            ]
            yield label, metric, cells


def _label(key: str) -> str:
    """The terminal / Markdown row label of "images" or a metric."""
    return key if key == "images" else metric_entry(key).label or key


def _latex_label(key: str) -> str:
    """The LaTeX row label of "images" or a metric (its plain label, escaped, if none)."""
    return key if key == "images" else metric_entry(key).latex or _tex_escape(_label(key))


def _best(values: dict[str, float], metric: str) -> set[str]:
    target = (max if metric_entry(metric).higher_is_better else min)(values.values())
    return {n for n, v in values.items() if v == target}


def build_table(results: Results) -> Table:
    """A rich :class:`~rich.table.Table`: sections "all" then each bucket, best in bold."""
    table = Table(title=TITLE, caption="\n".join(notes(results)), caption_justify="left")
    rows = list(_rows(results))
    table.add_column("holes", no_wrap=True)
    table.add_column("metric", no_wrap=True)
    for i, method in enumerate(results["methods"]):
        # Numbers never wrap; a long method name folds in the header instead.
        widest = max(len(_marked(*cells[i][::2])) for _, _, cells in rows)
        table.add_column(method["name"], justify="right", overflow="fold", min_width=widest)
    previous = None
    for label, key, cells in rows:
        if previous is not None and label != previous:
            table.add_section()
        table.add_row(
            label if label != previous else "",
            _label(key),
            *(Text(_marked(t, mark), style="bold" if best else "") for t, best, mark in cells),
        )
        previous = label
    return table


def _marked(text: str, mark: str) -> str:
    """A cell's text with its :data:`MARKS` sign."""
    return f"{text} {MARKS[mark]}" if mark else text


def render(results: Results, console: Console) -> None:
    """Print the table to ``console`` (a console narrower than :func:`table_width` crops it)."""
    console.print(build_table(results))


def table_width(results: Results) -> int:
    """Characters the table needs to be shown uncropped, without folding method names."""
    console = Console(width=10_000)
    return Measurement.get(console, console.options, build_table(results)).maximum


def _json_value(value: float) -> float | None:
    return value if math.isfinite(value) else None


def to_dict(results: Results) -> dict[str, Any]:
    """The JSON-ready structure: a value that is not finite becomes ``None``."""
    keys = metric_keys(results)

    def block(b: Any) -> dict[str, Any]:
        out = dict(b)
        out["metrics"] = {k: _json_value(b["metrics"][k]) for k in keys}
        if "ci95" in b:
            out["ci95"] = {k: [_json_value(v) for v in b["ci95"][k]] for k in keys}
        return out

    out: dict[str, Any] = {
        "ssim_window": results.get("ssim_window"),
        "methods": [
            {**block(m), "buckets": [block(b) for b in m["buckets"]]} for m in results["methods"]
        ],
    }
    if "comparisons" in results:
        out["baseline"] = results["baseline"]
        out["comparisons"] = results["comparisons"]
    return out


def to_json(results: Results) -> str:
    """Strict JSON (no ``Infinity`` or ``NaN``), indented, with a trailing newline."""
    return json.dumps(to_dict(results), indent=2, allow_nan=False) + "\n"


def to_csv(results: Results) -> str:
    """One row per method and range ("all", then each bucket), columns :func:`csv_columns`.

    With several runs of some method, ``runs`` and one ``{metric}_pm`` column per metric follow
    (the half-width of the 95% interval, empty with one run); with comparisons, one
    ``{metric}_vs_baseline`` column per metric (``better``, ``worse`` or empty).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keys = metric_keys(results)
    several = any(m.get("runs", 1) > 1 for m in results["methods"])
    marks = comparison_marks(results) if results.get("comparisons") else None
    header = list(csv_columns(results))
    if several:
        header += ["runs", *(f"{k}_pm" for k in keys)]
    if marks is not None:
        header += [f"{k}_vs_baseline" for k in keys]
    writer.writerow(header)
    for method in results["methods"]:
        for label, block in [("all", method), *((b["range"], b) for b in method["buckets"])]:
            row = [
                method["name"],
                label,
                block["images"],
                block["psnr_infinite"],
                *(format_value(block["metrics"][k]) for k in keys),
            ]
            if several:
                halves = [half_width(block, k) for k in keys]
                row += [block.get("runs", 1)]
                row += [f"{h:.3f}" if math.isfinite(h) else "" for h in halves]
            if marks is not None:
                row += [marks.get((method["name"], label, k), "") for k in keys]
            writer.writerow(row)
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
        texts = [_marked(f"**{text}**" if best else text, mark) for text, best, mark in cells]
        lines.append(f"| {shown} | {_md_escape(_label(key))} | " + " | ".join(texts) + " |")
        previous = label
    return "\n".join([*lines, "", *notes(results)]) + "\n"


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
        for text, best, mark in cells:
            tex = "--" if text == MISSING else text.replace("±", r"$\pm$")
            tex = rf"\textbf{{{tex}}}" if best else tex
            texts.append(tex + _TEX_MARKS.get(mark, ""))
        lines.append(f"{shown} & {_latex_label(key)} & " + " & ".join(texts) + r" \\")
        previous = label
    lines += [
        r"\bottomrule",
        r"\end{tabular}",
        rf"\caption{{{_tex_escape(TITLE)}; best in bold. {_tex_notes(results)}}}",
        r"\end{table}",
    ]
    return "\n".join(lines) + "\n"


def _tex_notes(results: Results) -> str:
    """:func:`notes` for a LaTeX caption (σ as ``$\\sigma$``)."""
    tex = " ".join(_tex_escape(n).replace("σ", r"$\sigma$") for n in notes(results))
    tex = tex.replace("±", r"$\pm$")
    for mark, sign in MARKS.items():
        tex = tex.replace(sign, _TEX_MARKS[mark])
    return tex
