"""Weights people can share: a folder with ``model.safetensors``, ``config.json`` and a model card.

``wmi export CHECKPOINT OUT_DIR`` turns a training checkpoint (hundreds of MB of optimizer
state, RNG states and a pickle-based format) into the files a model hub expects:

* ``model.safetensors``: the network's state dict (parameters and batch-norm buffers) only;
* ``config.json``: the architecture (the ``InpaintingUNet`` arguments, conv and norm kinds,
  layers), the input contract, a training summary (data, steps, mixed precision, validation
  metrics where the checkpoint has them), the wmi version and the SHA-256 of the weights;
* ``README.md``: a model card saying the same for people, with how to use the weights;
* ``model.onnx`` (``onnx=True``): the network as an ONNX graph (image and mask in, image out,
  dynamic batch and size) for serving without PyTorch, e.g. with onnxruntime.

:func:`load_exported` rebuilds the network from such a folder; its outputs equal those of the
checkpoint bit for bit. Nothing in an export folder runs code when it is loaded.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmi import __version__
from wmi.errors import WmiError
from wmi.io.files import file_sha256
from wmi.kinds import ARCHS, CONV_KINDS
from wmi.models.checkpoint import (
    arch_of,
    build_model,
    check_version,
    checked_network,
    load_checkpoint,
    model_config,
)
from wmi.models.onnx import DEFAULT_OPSET, check_onnx, export_onnx

__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "DEFAULT_OPSET",
    "EXPORT_FILES",
    "ONNX_FILE",
    "WEIGHTS_FILE",
    "ExportResult",
    "check_onnx",
    "export_model",
    "export_onnx",
    "load_exported",
    "read_export_config",
]

FORMAT = "wmi-export"
VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
ONNX_FILE = "model.onnx"
#: Every file an export folder may hold; ``overwrite`` replaces a folder holding only these.
EXPORT_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE, ONNX_FILE)
#: safetensors dtypes a network's weights may have (int8 or bool ones would be cast silently).
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
#: Keys of a training config (``wmi.training.loop.TrainConfig``) worth repeating in config.json.
TRAINING_KEYS = (
    "data",
    "masks",
    "size",
    "batch_size",
    "steps",
    "epochs",
    "lr",
    "lr_final",
    "finetune",
    "amp",
    "perceptual",
    "seed",
)
METRIC_KEYS = ("l1", "l2", "psnr", "ssim", "tv")


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
        out_dir: the export folder.
        files: file name -> path, in the order written.
        config: the content of ``config.json``.
    """

    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def onnx(self) -> Path | None:
        """The ONNX graph, when one was written."""
        return self.files.get(ONNX_FILE)


def _safetensors() -> Any:
    try:
        import safetensors.torch
    except ImportError:
        raise WmiError(
            "exporting weights needs the 'safetensors' package: pip install 'wmi[export]'"
        ) from None
    return safetensors.torch


def _finite(value: Any) -> Any:
    """JSON-safe numbers: non-finite floats (a perfect PSNR is inf) become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _read_checkpoint(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    """The network and the raw payload of a wmi checkpoint; a WmiError naming ``path``."""
    payload = load_checkpoint(path)  # names the file on every failure
    model = build_model(payload, str(path))
    return model, payload


def _training_summary(payload: dict[str, Any]) -> dict[str, Any]:
    """Steps, data and recipe of the run that produced a checkpoint, as far as it says."""
    cfg = payload.get("config")
    cfg = cfg if isinstance(cfg, dict) else {}
    summary: dict[str, Any] = {}
    step = payload.get("step")
    if isinstance(step, int):
        summary["step"] = step
    sched = payload.get("scheduler")
    if isinstance(sched, dict) and isinstance(sched.get("total_steps"), int):
        summary["total_steps"] = sched["total_steps"]
    for key in TRAINING_KEYS:
        if key in cfg:
            value = cfg[key]
            summary[key] = str(value) if isinstance(value, os.PathLike) else _finite(value)
    if isinstance(cfg.get("data"), str):
        summary["data_name"] = Path(cfg["data"]).name
    return summary


def _validation(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The best validation a checkpoint records, and whether it scored these very weights."""
    best = payload.get("best")
    if not isinstance(best, dict) or not any(k in best for k in METRIC_KEYS):
        return None
    out: dict[str, Any] = {
        k: _finite(float(best[k])) for k in METRIC_KEYS if isinstance(best.get(k), (int, float))
    }
    if isinstance(best.get("images"), int):
        out["images"] = best["images"]
    if isinstance(best.get("step"), int):
        out["step"] = best["step"]
        # best.pt is saved right after the validation that made it best; last.pt carries the
        # best validation of the run so far, which may have scored earlier weights.
        out["of_these_weights"] = best["step"] == payload.get("step")
    return out


def _state_for_safetensors(model: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors wants contiguous tensors that share no memory; clone keeps the state intact
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def build_config(model: nn.Module, payload: dict[str, Any], source: Path) -> dict[str, Any]:
    """The ``config.json`` of an export (without the ``files`` entry, added once written)."""
    summary = _training_summary(payload)
    return {
        "format": FORMAT,
        "version": VERSION,
        "wmi_version": __version__,
        "model": type(model).__name__,
        "architecture": model_config(model),
        "parameters": sum(p.numel() for p in model.parameters()),
        "input": {
            "image": "float (N, C, H, W) in [0, 1]",
            "mask": "float (N, 1, H, W) validity: 1 = known pixel, 0 = hole",
            "output": "float (N, C, H, W): the raw network output; composite it as "
            "mask * image + (1 - mask) * output",
            "multiple": int(model.multiple),
        },
        "amp": str(summary.get("amp", "off")),
        "training": summary,
        "validation": _validation(payload),
        "source": {"checkpoint": source.name},
    }


def _fmt_metric(value: Any) -> str:
    if value is None:
        return "inf"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card(config: dict[str, Any], folder_name: str) -> str:
    """The README.md of an export folder (Markdown, front matter for model hubs)."""
    arch, train, val = config["architecture"], config["training"], config.get("validation")
    entry = ARCHS[arch.get("arch", "unet")]
    if entry.takes_conv:
        known = arch["conv"] in CONV_KINDS
        kind = f"{CONV_KINDS[arch['conv']].label if known else arch['conv']} inpainting U-Net"
        rows = [
            f"| Network | PConv U-Net (`{config['model']}`), {arch['layers']} encoder layers |",
            f"| Convolution | `{arch['conv']}` |",
            f"| Normalization | `{arch['norm']}` (momentum {arch['norm_momentum']}) |",
            f"| Channels | {arch['in_channels']} in, first layer {arch['base_channels']} |",
        ]
    else:
        kind = f"{entry.label or entry.name} inpainting network"
        rows = [f"| Network | {entry.help} (`{config['model']}`, `--arch {entry.name}`) |"]
        rows += [f"| `{k}` | {v} |" for k, v in arch.items() if k != "arch"]
    lines = [
        "---",
        "library_name: wmi",
        "tags: [image-inpainting, weighted-mask-convolution, pytorch]",
        "---",
        "",
        f"# {folder_name}: {kind}",
        "",
        "An image-inpainting network from `wmi` (Kang et al., *Image Inpainting using Weighted "
        "Mask Convolution*), exported from the checkpoint "
        f"`{config['source']['checkpoint']}` with wmi {config['wmi_version']}.",
        "",
        "## Architecture",
        "",
        "| | |",
        "|---|---|",
        *rows,
        f"| Parameters | {config['parameters']:,} |",
        f"| Input size | height and width multiples of {config['input']['multiple']} |",
        "",
        "## Training",
        "",
        *_card_training(train),
        "",
        "## Validation",
        "",
        *_card_validation(val),
        *_card_usage(config, folder_name),
    ]
    return "\n".join(lines)


def _card_training(train: dict[str, Any]) -> list[str]:
    """The model card's training table."""
    lines: list[str] = []
    if train:
        rows = [
            ("Data", f"`{train['data']}`" if train.get("data") else None),
            ("Holes", train.get("masks")),
            ("Crop size", train.get("size")),
            ("Batch size", train.get("batch_size")),
            (
                "Steps",
                f"{train['step']}"
                + (f" of {train['total_steps']}" if train.get("total_steps") else "")
                if "step" in train
                else None,
            ),
            ("Learning rate", train.get("lr")),
            ("Fine-tuned from", f"`{train['finetune']}`" if train.get("finetune") else None),
            ("Mixed precision", train.get("amp")),
            ("Perceptual loss", train.get("perceptual")),
            ("Seed", train.get("seed")),
        ]
        lines += ["| | |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in rows if v is not None]
    else:
        lines.append("The checkpoint records no training run (weights only).")
    return lines


def _card_validation(val: dict[str, Any] | None) -> list[str]:
    """The model card's validation metrics."""
    lines: list[str] = []
    if val:
        metrics = [k for k in METRIC_KEYS if k in val]
        lines += [
            "| " + " | ".join(metrics) + " |",
            "|" + "---|" * len(metrics),
            "| " + " | ".join(_fmt_metric(val[k]) for k in metrics) + " |",
            "",
            f"Table I metrics of `wmi eval` over the hole, averaged over {val.get('images', '?')} "
            f"validation images, at step {val.get('step', '?')}."
            + (
                ""
                if val.get("of_these_weights", True)
                else " That was the best validation of the run; these weights are from a later "
                "step and were not scored."
            ),
        ]
    else:
        lines.append("The checkpoint holds no validation metrics.")
    return lines


def _card_usage(config: dict[str, Any], folder_name: str) -> list[str]:
    """The model card's "How to use" and "Files" sections."""
    lines = [
        "",
        "## How to use",
        "",
        "With wmi installed (`pip install wmi`):",
        "",
        "```bash",
        f"wmi inpaint folder images/ masks/ results/ --checkpoint {folder_name}",
        "```",
        "",
        "```python",
        "import wmi",
        "",
        f'model = wmi.load_model("{folder_name}")  # eval mode, ready for inference',
        "output = model(image, mask)  # image (N, 3, H, W) in [0, 1]; mask 1 = known",
        "result = mask * image + (1 - mask) * output",
        "```",
        "",
        "Masks are validity masks inside the library (1 = known pixel); mask files on disk are "
        "white where the hole is.",
    ]
    if config.get("files", {}).get(ONNX_FILE):
        lines += [
            "",
            "Without PyTorch, `model.onnx` runs with onnxruntime (inputs `image` and `mask`, "
            "float32, any batch size and a size that is a multiple of "
            f"{config['input']['multiple']}):",
            "",
            "```python",
            "import onnxruntime as ort",
            "",
            f'session = ort.InferenceSession("{folder_name}/model.onnx")',
            '(output,) = session.run(None, {"image": image, "mask": mask})',
            "```",
        ]
    lines += [
        "",
        "## Files",
        "",
        "| File | Content |",
        "|---|---|",
        f"| `{WEIGHTS_FILE}` | the network's weights and batch-norm statistics |",
        f"| `{CONFIG_FILE}` | architecture, input contract, training summary, checksums |",
    ]
    if config.get("files", {}).get(ONNX_FILE):
        lines.append(f"| `{ONNX_FILE}` | ONNX graph (opset {config.get('onnx_opset')}) |")
    lines += [
        "",
        "Add the license of the weights and of the training data before you share them.",
        "",
    ]
    return lines


def _is_export_config(path: Path) -> bool:
    """Whether ``path`` is a config.json that :func:`export_model` wrote (its format named)."""
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("format") == FORMAT


def _check_out_dir(out_dir: Path, overwrite: bool) -> bool:
    """Whether ``out_dir`` holds an earlier export to replace; refuse anything else non-empty."""
    if out_dir.exists() and not out_dir.is_dir():
        raise WmiError(f"{out_dir}: exists and is not a folder")
    if not out_dir.is_dir():
        return False
    entries = sorted(p.name for p in out_dir.iterdir())
    if not entries:
        return False
    foreign = [n for n in entries if n not in EXPORT_FILES or (out_dir / n).is_symlink()]
    if not foreign and not _is_export_config(out_dir / CONFIG_FILE):
        foreign = [CONFIG_FILE]  # files of export names that wmi export did not write
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise WmiError(
            f"{out_dir}: not empty and not an export folder (holds {shown}); choose a new "
            "or empty folder"
        )
    if not overwrite:
        raise WmiError(
            f"{out_dir}: already holds an export; pass --overwrite (overwrite=True) to replace it"
        )
    return True


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else exc.__class__.__name__


def _short(out_dir: Path) -> str:
    """OUT_DIR's name cut so that the staging folder's name (about 25 bytes more) fits."""
    return os.fsdecode(os.fsencode(out_dir.name)[:200])


def _publish(staging: Path, out_dir: Path, replace: bool) -> None:
    """Move the finished staging folder to ``out_dir`` in one rename (two when replacing)."""
    if not replace:
        if out_dir.is_dir():
            out_dir.rmdir()  # empty (checked); a file appearing meanwhile makes this fail
        os.replace(staging, out_dir)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{_short(out_dir)}.old-", dir=out_dir.parent))
    trash.rmdir()
    os.replace(out_dir, trash)
    try:
        os.replace(staging, out_dir)
    except BaseException:
        os.replace(trash, out_dir)  # put the previous export back
        raise
    shutil.rmtree(trash, ignore_errors=True)


def export_model(
    checkpoint_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    onnx: bool = False,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
) -> ExportResult:
    """Write the shareable form of a checkpoint: weights, config.json, model card (and ONNX).

    Everything is written into a hidden staging folder next to ``out_dir`` and renamed into
    place at the end, so ``out_dir`` is either absent, the previous export, or complete.

    Args:
        checkpoint_path: a checkpoint written by ``wmi train`` (``last.pt``, ``best.pt``) or
            :func:`wmi.models.checkpoint.save_checkpoint`.
        out_dir: the export folder; created. It must be absent or empty, or hold an earlier
            export (only the files of :data:`EXPORT_FILES`) and ``overwrite`` be set.
        onnx: also write ``model.onnx`` (needs the ``onnx`` and ``onnxscript`` packages).
        opset: ONNX opset version.
        overwrite: replace an earlier export in ``out_dir``.

    Returns:
        an :class:`ExportResult` with the files written and the config.

    Raises:
        WmiError: the checkpoint is missing, damaged or not a wmi checkpoint; ``out_dir`` is
            not empty (or holds other files); a package needed is missing.
    """
    checkpoint_path, out_dir = Path(checkpoint_path), Path(out_dir)
    st = _safetensors()
    replace = _check_out_dir(out_dir, overwrite)
    model, payload = _read_checkpoint(checkpoint_path)
    arch = ARCHS[arch_of(model)]
    if onnx and not arch.onnx:
        raise WmiError(
            f"--onnx: {checkpoint_path} is --arch {arch.name}, whose network torch's ONNX "
            "exporter cannot trace (contextual attention); export without --onnx"
        )
    model.eval()
    config = build_config(model, payload, checkpoint_path)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{_short(out_dir)}.export-", dir=out_dir.parent))
    try:
        files: dict[str, Path] = {}
        weights = staging / WEIGHTS_FILE
        st.save_file(
            _state_for_safetensors(model),
            str(weights),
            metadata={"format": "pt", "wmi_format": FORMAT, "wmi_version": __version__},
        )
        files[WEIGHTS_FILE] = weights
        if onnx:
            export_onnx(model, staging / ONNX_FILE, opset=opset)
            files[ONNX_FILE] = staging / ONNX_FILE
            config["onnx_opset"] = opset
        config["files"] = {
            name: {"sha256": file_sha256(path), "bytes": path.stat().st_size}
            for name, path in files.items()
        }
        (staging / CONFIG_FILE).write_text(
            json.dumps(config, indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
        files[CONFIG_FILE] = staging / CONFIG_FILE
        (staging / CARD_FILE).write_text(model_card(config, out_dir.name), encoding="utf-8")
        files[CARD_FILE] = staging / CARD_FILE
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it owner-only
        for path in files.values():  # safetensors writes owner-only too: these are to share
            os.chmod(path, 0o666 & ~_umask())
        _publish(staging, out_dir, replace)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(out_dir, {name: out_dir / name for name in files}, config)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_export_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked ``config.json`` of an export folder.

    Raises:
        WmiError: missing or unreadable config.json, another format, or a newer version.
    """
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not folder.is_dir():
        raise WmiError(f"{folder}: no such export folder")
    if not path.is_file():
        raise WmiError(f"{folder}: not a wmi export folder (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WmiError(f"{path}: not readable JSON ({exc.__class__.__name__})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise WmiError(f"{path}: not a wmi export config (no '{FORMAT}' format)")
    check_version(path, "export", config.get("version", 0), VERSION)
    if not isinstance(config.get("architecture"), dict):
        raise WmiError(f"{path}: no architecture")
    return config


def load_exported(
    folder: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network of an export folder.

    The weights are checked against the SHA-256 in config.json, then loaded with
    ``safetensors`` (no pickle: loading never runs code). Outputs equal those of the model
    loaded from the source checkpoint bit for bit.

    Args:
        folder: a folder written by :func:`export_model`.
        map_location: device for the network.

    Returns:
        ``(model, meta)``: the network in eval mode on ``map_location``, and the content of
        config.json (``meta["amp"]`` is the mixed precision it was trained with,
        ``meta["training"]`` and ``meta["validation"]`` the summary).

    Nothing is built before the architecture in config.json has been checked against the
    names and shapes in the safetensors header; tensors that are not floating point, or hold
    NaN or infinity, are refused by name (int8 or bool weights would be cast silently).

    Raises:
        WmiError: one line naming the file: missing, damaged (checksum), or weights that do
            not fit the architecture, are not floating point, or are not finite.
    """
    st = _safetensors()
    folder = Path(folder)
    config = read_export_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise WmiError(f"{weights}: no such file")
    files = config.get("files", {})
    entry = files.get(WEIGHTS_FILE, {}) if isinstance(files, dict) else None
    expected = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(entry, dict) or not isinstance(expected, str | None):
        raise WmiError(f"{folder / CONFIG_FILE}: 'files' is not a table of files and SHA-256s")
    if expected is not None and file_sha256(weights) != expected:
        raise WmiError(f"{weights}: damaged (SHA-256 differs from {CONFIG_FILE})")
    network, architecture = checked_network(config["architecture"], str(folder / CONFIG_FILE))
    try:
        with st.safe_open(str(weights), framework="pt") as f:
            names = f.keys()
            header = {key: f.get_slice(key) for key in names}
            shapes = {key: tuple(part.get_shape()) for key, part in header.items()}
            dtypes = {key: part.get_dtype() for key, part in header.items()}
    except Exception as exc:  # a damaged or hostile header: safetensors' own errors
        raise WmiError(f"{weights}: not a readable safetensors file ({_first_line(exc)})") from None
    network.check_weights_fit(architecture, shapes, str(weights))
    for key, dtype in dtypes.items():
        counter = key.endswith("num_batches_tracked") and dtype == "I64"  # batch norm's count
        if dtype not in FLOAT_DTYPES and not counter:
            raise WmiError(f"{weights}: {key} holds {dtype} values, not floating-point weights")
    state = st.load_file(str(weights), device="cpu")
    for key, value in state.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise WmiError(
                f"{weights}: holds non-finite weights (NaN or inf in {key}); the file is "
                "damaged or was saved that way, and cannot be used"
            )
    model = network.from_config(architecture)
    model.load_state_dict(state)
    return model.to(map_location).eval(), config
