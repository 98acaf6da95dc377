"""``wmi study``: a whole Table I experiment from one study file, resumable."""

from pathlib import Path

import typer

from wmi.cli.common import choice, err_console, notify, progress_bar
from wmi.kinds import DEVICES


def study(
    study_file: Path = typer.Argument(
        ..., metavar="STUDY.toml", help="The study file (docs/study.md).", show_default=False
    ),
    out: Path = typer.Option(
        ..., "--out", metavar="DIR", help="The study folder (created).", show_default=False
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        "--force",
        help="Start over when DIR holds this study's folder made from another study file.",
    ),
    device: str = choice(DEVICES, "auto", "--device", help="Where networks inpaint:"),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the bootstrap comparisons."),
) -> None:
    """Train every (method, seed) run, inpaint the test images, and write Table I with 95%
    intervals over seeds and paired comparisons (report.md, report.json, report.html in DIR).

    Run it again to resume: finished runs are skipped and a killed run continues from its last
    checkpoint. Works unchanged on a GPU machine and under torchrun.
    """
    from wmi.experiments.study import run_study

    with progress_bar(disable=not err_console.is_terminal) as bar:
        task = bar.add_task("study", total=None)
        result = run_study(
            study_file,
            out,
            overwrite=overwrite,
            device=device,
            seed=seed,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            notify=notify,
        )
    if result.reports:
        typer.echo(result.reports[0].read_text(encoding="utf-8"), nl=False)
        skipped = f", {len(result.skipped)} finished earlier" if result.skipped else ""
        notify(
            "info",
            f"{len(result.trained)} runs trained{skipped}; {result.seconds:.0f} s; reports: "
            + ", ".join(str(p) for p in result.reports),
        )
