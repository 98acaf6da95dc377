"""``wmi export``: the shareable form of a checkpoint (see docs/export.md).

Importing this module does not import torch.
"""

from pathlib import Path

import typer

#: How much an ONNX graph may differ from PyTorch before ``wmi export --onnx`` fails.
ONNX_TOLERANCE = 1e-4


def export(
    checkpoint: Path = typer.Argument(
        ..., help="Checkpoint from `wmi train` (RUN_DIR/checkpoints/best.pt or last.pt)."
    ),
    out_dir: Path = typer.Argument(
        ..., help="New (or empty) folder for model.safetensors, config.json and README.md."
    ),
    onnx: bool = typer.Option(
        False,
        "--onnx",
        help="Also write model.onnx, the network as an ONNX graph for serving without PyTorch "
        "(needs the onnx and onnxscript packages); checked against PyTorch with onnxruntime "
        "when that is installed.",
    ),
    opset: int | None = typer.Option(
        None, "--opset", min=18, max=30, help="ONNX opset version.", show_default="18"
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace an earlier export in OUT_DIR (only its files)."
    ),
) -> None:
    """Export a checkpoint as weights people can share: model.safetensors (weights only, no
    pickle), config.json (architecture, training summary, checksums) and a README.md model
    card. `wmi inpaint --checkpoint`, `wmi train --finetune` and `wmi.load_model` accept the
    folder as they accept the checkpoint, with the same results.
    """
    from wmi.errors import WmiError
    from wmi.models.export import DEFAULT_OPSET, check_onnx, export_model, load_exported

    if not checkpoint.is_file():
        raise WmiError(f"{checkpoint}: no such checkpoint file")
    result = export_model(
        checkpoint, out_dir, onnx=onnx, opset=opset or DEFAULT_OPSET, overwrite=overwrite
    )
    for path in result.files.values():
        typer.echo(str(path))
    if result.onnx is None:
        return
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        typer.echo("note: onnxruntime is not installed: model.onnx was not checked", err=True)
        return
    model, _ = load_exported(out_dir)
    worst = check_onnx(model, result.onnx)
    if not worst <= ONNX_TOLERANCE:
        raise WmiError(
            f"{result.onnx}: differs from PyTorch by {worst:.2g} (more than "
            f"{ONNX_TOLERANCE:g}); do not use it"
        )
    typer.echo(f"model.onnx matches PyTorch to {worst:.1g} (onnxruntime, CPU)", err=True)
