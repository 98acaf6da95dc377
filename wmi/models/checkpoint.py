"""Checkpoints: one file with the model, its architecture, and (for training) the full state.

Checkpoints are plain ``torch.save`` dictionaries of tensors and primitive values and are
always loaded with ``torch.load(weights_only=True)``: opening a checkpoint never runs code.
Files are written atomically, so a crash or a full disk while saving keeps the previous
checkpoint. Loading verifies the zip archive's CRC-32 checksums and the weights' finiteness,
so a damaged file is reported as damaged instead of loading different weights.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from wmi.errors import WmiError
from wmi.io import atomic_path
from wmi.kinds import ARCHS
from wmi.registry import load

FORMAT = "wmi-checkpoint"
VERSION = 1
#: What loading a checkpoint may inflate: torch.save stores its members uncompressed, so
#: their sizes add up to about the file's; more than this many times it (plus the slack, for
#: small files) is a compressed archive made to exhaust memory (a 3 MB file of 3 GB).
MAX_INFLATION = 4
INFLATION_SLACK = 16 * 2**20


def arch_of(model: nn.Module) -> str:
    """The ``--arch`` whose network ``model`` is (``ARCHS``); a ValueError for other classes."""
    for entry in ARCHS.entries():
        if type(model) is load(entry.network):
            return entry.name
    raise ValueError(f"{type(model).__name__} is not the network of any registered arch")


def model_config(model: nn.Module) -> dict[str, Any]:
    """What rebuilds ``model``: ``{"arch": name, **model.config()}`` (checkpoints, exports)."""
    return {"arch": arch_of(model), **model.config()}


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """The untrained network of a :func:`model_config` dict; no ``"arch"`` means ``unet``
    (checkpoints and exports written before there were others).

    Raises:
        WmiError: an unknown arch, naming the choices; TypeError/ValueError: bad arguments.
    """
    config = dict(config)
    arch = ARCHS[str(config.pop("arch", "unet"))]
    return load(arch.network).from_config(config)


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, **state: Any) -> None:
    """Write ``model`` (its weights and architecture) plus any extra ``state`` atomically.

    The file is written under a temporary name, flushed to disk and then renamed, so ``path``
    is either the previous checkpoint or the complete new one, even on a full disk or a kill.

    Args:
        path: destination file.
        model: the bare network of a registered arch (unwrap DDP / ``torch.compile`` first).
        **state: anything ``torch.load(weights_only=True)`` can read back: optimizer and
            scheduler state dicts, step, RNG states, the training config as a dict, metrics.

    Raises:
        WmiError: the file cannot be written (full disk, read-only folder), naming it; an
            earlier file at ``path`` is left as it was.
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model_config(model),
        "model": model.state_dict(),
        **state,
    }
    try:
        # A Python file object, not a path: torch's own writer reports a full disk as
        # "unexpected pos"; through Python it is an OSError that says what happened.
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        kept = f"; the previous {path.name} is kept" if path.is_file() else ""
        raise WmiError(f"{path}: cannot write ({exc.strerror or exc}){kept}") from None


def _reason(exc: BaseException) -> str:
    """The first sentence of an exception's message (never cut mid-sentence)."""
    if isinstance(exc, KeyError):  # torch's legacy reader on a text file: "KeyError: 101"
        return "not a PyTorch file"
    text = str(exc).strip()
    if not text:
        return exc.__class__.__name__
    first = text.splitlines()[0].strip()
    return first.split(". ")[0].rstrip(".") if ". " in first else first.rstrip(".")


def _unpickling_error(
    path: Path, exc: pickle.UnpicklingError, what: str = "wmi checkpoint"
) -> WmiError:
    """The error for a file that ``torch.load(weights_only=True)`` could not unpickle.

    torch's message is a paragraph on how to load the file unsafely; the line that matters is
    its ``WeightsUnpickler error``: a global that is not allowed (the file holds Python
    objects, which could run code: refused) or an unknown opcode (not a PyTorch file).
    """
    text = str(exc)
    found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, re.S)
    detail = " ".join(found.group(1).split()) if found else _reason(exc)
    # torch's wording differs between versions: "Unsupported global: GLOBAL os.system" or
    # "Trying to load unsupported GLOBAL posix.system whose module posix is blocked"
    named = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", text)
    if named is None:
        return WmiError(f"{path}: not a readable {what} ({_reason(ValueError(detail))})")
    return WmiError(
        f"{path}: refused: it holds Python objects besides tensors and plain values (it "
        f"refers to {named.group(1)}), and wmi opens checkpoints with weights_only=True so that "
        "loading never runs code; it was not written by wmi"
    )


def verify_archive(path: str | os.PathLike[str]) -> None:
    """Check every member of a checkpoint's zip archive against its stored CRC-32.

    ``torch.load`` does not check the CRCs, so bytes changed on disk would load as different
    weights without a word. Files that are not zip archives are left to ``torch.load``.
    Before anything is decompressed, the members' sizes are bounded by the file's
    (:data:`MAX_INFLATION`).

    Raises:
        WmiError: "damaged", naming the file and the first bad member; or "refused", when the
            members would inflate far beyond the file.
    """
    path = Path(path)
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if not is_zip:
        return
    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
            on_disk = path.stat().st_size
            if inflated > MAX_INFLATION * on_disk + INFLATION_SLACK:
                raise WmiError(
                    f"{path}: refused: its members inflate to {inflated:,} bytes from "
                    f"{on_disk:,} on disk (a zip bomb?); torch.save stores checkpoints "
                    "uncompressed"
                )
            bad = archive.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        if isinstance(exc, WmiError):
            raise
        raise WmiError(f"{path}: damaged: not a complete zip archive (truncated?)") from None
    if bad is not None:
        raise WmiError(f"{path}: damaged: {bad} does not match its checksum (CRC-32)")


def _check_finite(path: Path, payload: dict) -> None:
    """Refuse a model whose weights or statistics hold NaN or infinity, or are not floats
    (int8 or bool weights would be cast silently by ``load_state_dict``)."""
    state = payload.get("model")
    if not isinstance(state, dict):
        return
    for key, value in state.items():
        floating = isinstance(value, torch.Tensor) and value.is_floating_point()
        counter = key.endswith("num_batches_tracked")  # batch norm's integer count
        if isinstance(value, torch.Tensor) and not floating and not counter:
            raise WmiError(
                f"{path}: {key} holds {str(value.dtype).removeprefix('torch.')} values, not "
                "floating-point weights"
            )
        if floating and not torch.isfinite(value).all():
            raise WmiError(
                f"{path}: holds non-finite weights (NaN or inf in {key}); the file is "
                "damaged or was saved that way, and cannot be used"
            )


def read_torch_file(path: str | os.PathLike[str], what: str) -> Any:
    """``torch.load(weights_only=True)`` of a weights file that is not a wmi checkpoint
    (torchvision's VGG16, an LPIPS or FID network), with a checkpoint's checks: the archive's
    checksums and inflation first, and one line naming ``path`` and ``what`` on failure.

    Raises:
        WmiError: missing, damaged, refused (Python objects, a zip bomb) or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise WmiError(f"{path}: no such {what} file")
    verify_archive(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _unpickling_error(path, exc, what) from None
    except Exception as exc:  # truncated files, foreign formats
        raise WmiError(f"{path}: not a readable {what} ({_reason(exc)})") from None


def check_version(path: Path, what: str, version: Any, supported: int) -> None:
    """A file's format ``version`` is a whole number this wmi reads (at most ``supported``).

    Raises:
        WmiError: naming ``path`` and ``what`` ("checkpoint", "export"): not a whole number,
            or newer than this wmi (upgrade it).
    """
    if type(version) is not int or version < 0:
        raise WmiError(f"{path}: {what} format version {version!r} is not a whole number")
    if version > supported:
        raise WmiError(
            f"{path}: {what} format version {version} is newer than this wmi supports "
            f"({supported}); upgrade wmi"
        )


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`, safely.

    The archive is verified first (:func:`verify_archive`), then read with
    ``torch.load(weights_only=True)``, and the model's tensors are checked to be finite.

    Raises:
        WmiError: the file is missing, damaged, refused (it holds objects that could run
            code), not a wmi checkpoint, or of a newer version.
    """
    path = Path(path)
    if not path.is_file():
        raise WmiError(f"{path}: no such checkpoint")
    verify_archive(path)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _unpickling_error(path, exc) from None
    except Exception as exc:  # truncated files, foreign formats
        raise WmiError(f"{path}: not a readable wmi checkpoint ({_reason(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise WmiError(f"{path}: not a wmi checkpoint (no '{FORMAT}' header)")
    check_version(path, "checkpoint", payload.get("version", 0), VERSION)
    step = payload.get("step")
    if step is not None and (type(step) is not int or step < 0):
        raise WmiError(f"{path}: step {step!r} is not a whole number")
    if not isinstance(payload.get("config", {}), dict):
        raise WmiError(f"{path}: its training configuration is not a table of settings")
    _check_finite(path, payload)
    return payload


def checked_network(config: Any, where: str) -> tuple[Any, dict[str, Any]]:
    """The network class and its arguments of an architecture read from a file (a checkpoint's
    ``model_config``, an export's ``architecture``), checked before anything is built: a
    registered ``arch`` (none: ``unet``, files written before there were others) and settings
    its class accepts (its ``checked_config``).

    Raises:
        WmiError: naming ``where``: not a table, an unknown arch, or a setting refused.
    """
    if not isinstance(config, dict):
        raise WmiError(f"{where}: the architecture is not a table of settings")
    config = dict(config)
    name = config.pop("arch", "unet")
    if not isinstance(name, str) or name not in ARCHS:
        raise WmiError(f"{where}: architecture arch {name!r} is not one of {list(ARCHS)}")
    network = load(ARCHS[name].network)
    return network, network.checked_config(config, where)


def build_model(payload: dict, where: str = "checkpoint") -> nn.Module:
    """Rebuild the network (any arch) of a loaded checkpoint and load its weights.

    The architecture is checked against the weights' shapes before the network is built, so
    a tampered ``model_config`` (a billion layers, 512 base channels beside 32-channel
    weights) is one line instead of gigabytes of memory.

    Raises:
        WmiError: naming ``where``: no model, an invalid architecture, or weights of another.
    """
    state = payload.get("model")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WmiError(f"{where}: does not hold a wmi model (no table of weights)")
    network, config = checked_network(payload.get("model_config"), where)
    network.check_weights_fit(config, {k: tuple(v.shape) for k, v in state.items()}, where)
    model = network.from_config(config)
    model.load_state_dict(state)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The bare network inside DDP and/or ``torch.compile`` wrappers."""
    while True:
        if hasattr(model, "module"):  # DistributedDataParallel
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile
            model = model._orig_mod
        else:
            return model
