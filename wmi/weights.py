"""Where pretrained weight files live: one lookup rule for every metric and loss that needs one.

Our machines cannot download, so weights are files the user puts in place, under the names
torchvision and pytorch-fid give them (:data:`WEIGHTS`). :func:`find_weights` looks in
``weights_dir`` when one is given (``--weights-dir``), else in the torch hub cache
``torch.hub.get_dir()/checkpoints``, where torchvision and pytorch-fid keep what they download.
A metric whose file is missing is left out with the one line of :func:`missing_weights_message`;
:func:`fetch_weights` lets torch download it on a machine with a network
(``--download-weights``).

This module imports torch only inside :func:`fetch_weights`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WeightsFile:
    """A pretrained weight file known by its standard name.

    Attributes:
        filename: the file name torchvision / pytorch-fid download to (and look for).
        url: where it is downloaded from.
        network: the network whose state dict it holds.
        used_by: the metrics and losses that need it, as shown to the user.
    """

    filename: str
    url: str
    network: str
    used_by: tuple[str, ...]


ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
VGG16_FILE = "vgg16-397923af.pth"
FID_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"

#: The standard weight files, keyed by file name.
WEIGHTS: dict[str, WeightsFile] = {
    ALEXNET_FILE: WeightsFile(
        ALEXNET_FILE,
        "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
        "torchvision alexnet (ImageNet)",
        ("LPIPS (alex)",),
    ),
    VGG16_FILE: WeightsFile(
        VGG16_FILE,
        "https://download.pytorch.org/models/vgg16-397923af.pth",
        "torchvision vgg16 (ImageNet)",
        ("LPIPS (vgg)", "the training loss's perceptual and style terms (--vgg-weights)"),
    ),
    FID_INCEPTION_FILE: WeightsFile(
        FID_INCEPTION_FILE,
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth",
        "pytorch-fid's FID Inception (TensorFlow inception-2015-12-05)",
        ("FID",),
    ),
}

#: Which file each perceptual metric needs: ``"lpips-alex"``, ``"lpips-vgg"``, ``"fid"``.
METRIC_WEIGHTS: dict[str, str] = {
    "lpips-alex": ALEXNET_FILE,
    "lpips-vgg": VGG16_FILE,
    "fid": FID_INCEPTION_FILE,
}
#: How a metric is named in messages.
METRIC_LABELS: dict[str, str] = {
    "lpips-alex": "LPIPS (alex)",
    "lpips-vgg": "LPIPS (vgg)",
    "fid": "FID",
}


def hub_checkpoints_dir() -> Path:
    """torch's download cache for weights: ``torch.hub.get_dir()/checkpoints``.

    Without importing torch (hundreds of MB and seconds, for a folder name): torch's rule,
    ``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``. When
    torch is already imported, its own answer (which honours ``torch.hub.set_dir``).
    """
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "hub"):
        return Path(torch.hub.get_dir()) / "checkpoints"
    cache = os.getenv("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    home = os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))
    return Path(home) / "hub" / "checkpoints"


def weights_search_dir(weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """The one folder weights are looked up in: ``weights_dir`` if given, else the hub cache."""
    return Path(weights_dir) if weights_dir is not None else hub_checkpoints_dir()


def find_weights(filename: str, weights_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The weight file ``filename`` in :func:`weights_search_dir`, or None if it is not there.

    Only that one folder is searched: with ``weights_dir`` given, a copy in the hub cache is not
    used (an explicit ``--weights-dir`` means those weights and no others).
    """
    path = weights_search_dir(weights_dir) / filename
    return path if path.is_file() else None


def missing_weights_message(
    filename: str, weights_dir: str | os.PathLike[str] | None = None, what: str | None = None
) -> str:
    """One line saying which metric is left out and which file to put where.

    ``what`` names the metric; by default the first entry of ``WEIGHTS[filename].used_by``.
    Example: ``LPIPS (alex) left out: put alexnet-owt-7be5be79.pth in /root/.cache/torch/hub/
    checkpoints (or pass --weights-dir)``.
    """
    if what is None:
        what = WEIGHTS[filename].used_by[0] if filename in WEIGHTS else filename
    folder = weights_search_dir(weights_dir)
    hint = "" if weights_dir is not None else " (or pass --weights-dir)"
    return f"{what} left out: put {filename} in {folder}{hint}"


def fetch_weights(filename: str, weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """Download ``filename`` from its standard URL into :func:`weights_search_dir`, unless present.

    For ``--download-weights`` on machines with a network. Returns the file's path.

    Raises:
        KeyError: ``filename`` is not one of :data:`WEIGHTS`.
        OSError / URLError: the download failed.
    """
    found = find_weights(filename, weights_dir)
    if found is not None:
        return found
    import torch

    folder = weights_search_dir(weights_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    torch.hub.download_url_to_file(WEIGHTS[filename].url, str(path), progress=True)
    return path
