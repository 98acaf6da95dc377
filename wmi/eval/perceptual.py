"""Perceptual metrics as the inpainting papers compute them: LPIPS and FID.

* **LPIPS** (Zhang et al. 2018, v0.1) is the ``lpips`` package's own ``LPIPS`` module: its
  linear heads ship inside the package; the backbone (torchvision ``alexnet`` or ``vgg16``,
  ImageNet weights) is built without weights and loaded from the local weight file, so nothing
  is downloaded. Per image, on float images in [0, 1] (scaled to [-1, 1] as ``lpips`` expects).
* **FID** (Heusel et al. 2017) is pytorch-fid's: its ``InceptionV3([3])`` (2048-d pool3
  features, input resized bilinearly to 299x299, scaled to [-1, 1]) with the FID Inception
  weights loaded from the local file, features stored in float64, and the value of pytorch-fid's
  ``calculate_frechet_distance`` on the features' means and covariances (computed through a
  low-rank factorization instead of SciPy's ``sqrtm`` of a 2048x2048 matrix, which takes minutes
  on two cores; see :func:`frechet_distance`). Features are computed once per image
  (:func:`fid_features`); FID of any subset (a method, a hole-ratio bucket) is then
  :func:`frechet_distance` of the cached rows (:func:`fid_by_group`).
Weight files are found by :mod:`wmi.weights`; :func:`perceptual_availability` says which
metrics can run and gives the one-line notices for the others. ``lpips`` and ``pytorch-fid``
are optional dependencies (``wmi[perceptual]``), imported only when a network is loaded.

Networks take torch tensors ``(N, 3, H, W)`` or numpy arrays ``(N, H, W, 3)`` (or a sequence
of ``(H, W, 3)`` arrays), float in [0, 1]; they run in float32, batched, under
``torch.inference_mode``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from wmi.errors import WmiError
from wmi.kinds import LPIPS_NETS
from wmi.weights import (
    FID_INCEPTION_FILE,
    METRIC_LABELS,
    METRIC_WEIGHTS,
    fetch_weights,
    find_weights,
    missing_weights_message,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

#: Dimension of pytorch-fid's pool3 features.
FID_DIMS = 2048
#: The pip packages each metric needs, by module name.
_PACKAGES = {"lpips-alex": "lpips", "lpips-vgg": "lpips", "fid": "pytorch_fid"}
_PIP_NAMES = {"lpips": "lpips", "pytorch_fid": "pytorch-fid"}


# --------------------------------------------------------------------------------------------
# Which metrics can run


def perceptual_availability(
    metrics: Sequence[str],
    weights_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
) -> tuple[dict[str, Path], list[str]]:
    """Which of ``metrics`` (``"lpips-alex"``, ``"lpips-vgg"``, ``"fid"``) can run here.

    A metric runs when its package is installed and its weight file is found
    (:func:`wmi.weights.find_weights`; with ``download`` it is fetched first). Never raises for
    a missing package or file, nor for a failed download: that metric is left out.

    Returns:
        ``(available, notices)``: the weight file of each metric that can run, and one line for
        each that cannot (``"FID left out: put pt_inception-….pth in DIR (or pass
        --weights-dir)"``).

    Raises:
        WmiError: an unknown metric name (a programming error of the caller's options).
    """
    available: dict[str, Path] = {}
    notices: list[str] = []
    for metric in metrics:
        if metric not in METRIC_WEIGHTS:
            raise WmiError(
                f"unknown perceptual metric {metric!r}: expected one of {', '.join(METRIC_WEIGHTS)}"
            )
        label = METRIC_LABELS[metric]
        module = _PACKAGES[metric]
        if importlib.util.find_spec(module) is None:
            notices.append(
                f"{label} left out: the {_PIP_NAMES[module]} package is not installed "
                "(pip install 'wmi[perceptual]')"
            )
            continue
        filename = METRIC_WEIGHTS[metric]
        path = find_weights(filename, weights_dir)
        if path is None and download:
            try:
                path = fetch_weights(filename, weights_dir)
            except Exception as error:  # any network or file failure leaves the metric out
                notices.append(f"{label} left out: downloading {filename} failed ({error})")
                continue
        if path is None:
            notices.append(missing_weights_message(filename, weights_dir, what=label))
        else:
            available[metric] = path
    return available, notices


# --------------------------------------------------------------------------------------------
# Input batches


def _as_nchw(images: object) -> torch.Tensor:
    """Float32 ``(N, 3, H, W)`` tensor on the CPU from a tensor (NCHW) or numpy (NHWC)."""
    import torch

    if isinstance(images, torch.Tensor):
        batch = images
    else:
        if isinstance(images, np.ndarray):
            array = images
        else:
            items = list(images)  # type: ignore[call-overload]
            if not items:
                return torch.empty(0, 3, 0, 0)
            array = np.stack([np.asarray(item) for item in items])
        if array.ndim != 4 or array.shape[3] != 3:
            raise WmiError(f"expected images (N, H, W, 3), got shape {array.shape}")
        batch = torch.from_numpy(np.ascontiguousarray(array)).permute(0, 3, 1, 2).contiguous()
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise WmiError(f"expected images (N, 3, H, W), got shape {tuple(batch.shape)}")
    if not batch.is_floating_point():
        raise WmiError(f"expected float images in [0, 1], got {batch.dtype}")
    return batch.float().contiguous()


# --------------------------------------------------------------------------------------------
# LPIPS


def load_lpips(net: str, weights: str | os.PathLike[str], device: str = "cpu") -> nn.Module:
    """The ``lpips`` package's LPIPS v0.1 with its shipped linear heads and our backbone file.

    Args:
        net: ``"alex"`` or ``"vgg"``.
        weights: a torchvision ``alexnet`` / ``vgg16`` state dict file
            (``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``).
        device: where the module runs.

    Raises:
        WmiError: unknown ``net``, or the file is unreadable or not that network's state dict.
    """
    import lpips

    if net not in LPIPS_NETS:
        raise WmiError(f"--lpips-net {net!r}: expected one of {', '.join(LPIPS_NETS)}")
    with warnings.catch_warnings():
        # pnet_rand=True builds the torchvision backbone without weights (``pretrained=False``,
        # deprecated by torchvision): nothing is downloaded; the backbone is loaded below.
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=True, net=net, version="0.1", pnet_rand=True, verbose=False)
    state = _load_state_dict(weights)
    _load_lpips_backbone(model.net, state, Path(weights), net)
    return model.eval().requires_grad_(False).to(device)


def _load_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    from wmi.models.checkpoint import read_torch_file

    state = read_torch_file(path, "weights file")
    if not isinstance(state, dict):
        raise WmiError(f"{path}: not a state dict")
    return state


def _load_lpips_backbone(
    backbone: nn.Module, state: dict[str, torch.Tensor], path: Path, net: str
) -> None:
    """Copy ``features.<i>.*`` of a torchvision state dict into lpips's ``slice<k>.<i>.*``."""
    import torch

    expected = {"alex": "alexnet", "vgg": "vgg16"}[net]
    with torch.no_grad():
        for name, tensor in [*backbone.named_parameters(), *backbone.named_buffers()]:
            _, index, kind = name.split(".", 2)
            key = f"features.{index}.{kind}"
            source = state.get(key)
            if source is None or source.shape != tensor.shape:
                raise WmiError(f"{path}: not a torchvision {expected} state dict ({key})")
            tensor.copy_(source)


def lpips_distances(
    model: nn.Module, a: object, b: object, batch_size: int = 32, device: str | None = None
) -> np.ndarray:
    """LPIPS between ``a[i]`` and ``b[i]`` per image, float64 ``(N,)``.

    ``model`` is :func:`load_lpips`'s; ``a`` and ``b`` are images in [0, 1] (see the module
    docstring), same shape. The same as ``model(a, b, normalize=True)`` of the ``lpips``
    package, in batches of ``batch_size``.
    """
    import torch

    ta, tb = _as_nchw(a), _as_nchw(b)
    if ta.shape != tb.shape:
        raise WmiError(f"LPIPS: images differ in shape, {tuple(ta.shape)} vs {tuple(tb.shape)}")
    if device is None:
        device = str(next(model.parameters()).device)
    out = np.empty(len(ta), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(ta), batch_size):
            xa = ta[start : start + batch_size].to(device)
            xb = tb[start : start + batch_size].to(device)
            d = model(xa, xb, normalize=True)  # (B, 1, 1, 1)
            out[start : start + len(xa)] = d.reshape(-1).double().cpu().numpy()
    return out


def lpips_features(model: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The unit-normalised backbone features of one batch, one ``(B, C_k, H_k, W_k)`` per layer:
    the half of ``model(a, b, normalize=True)`` that depends on one side only, so a ground
    truth's can serve every method compared with it (:meth:`PerceptualNets.lpips_many`).

    Args:
        model: :func:`load_lpips`'s; images: ``(B, 3, H, W)`` in [0, 1] on the model's device.
    """
    import lpips

    outs = model.net.forward(model.scaling_layer(2 * images - 1))
    return [lpips.normalize_tensor(outs[k]) for k in range(model.L)]


def lpips_from_features(
    model: nn.Module, feats_a: Sequence[torch.Tensor], feats_b: Sequence[torch.Tensor]
) -> torch.Tensor:
    """LPIPS ``(B,)`` from two sides' :func:`lpips_features`: the ``lpips`` package's forward
    after its backbone (linear heads on squared differences, spatial mean, sum over layers)."""
    total = 0
    for k in range(model.L):
        total = total + model.lins[k]((feats_a[k] - feats_b[k]) ** 2).mean([2, 3])
    return total.reshape(-1)


# --------------------------------------------------------------------------------------------
# FID


def load_fid_inception(weights: str | os.PathLike[str], device: str = "cpu") -> nn.Module:
    """pytorch-fid's ``InceptionV3([3])`` with the FID Inception weights from ``weights``.

    pytorch-fid's ``fid_inception_v3`` fetches its weights with ``load_state_dict_from_url``;
    here that one call returns the state dict read from ``weights`` instead, so the network is
    exactly pytorch-fid's (``resize_input=True``, ``normalize_input=True``) and nothing is
    downloaded.

    Raises:
        WmiError: the file is unreadable or not the FID Inception state dict.
    """
    from unittest import mock

    from pytorch_fid import inception as fid_inception

    state = _load_state_dict(weights)
    try:
        with mock.patch.object(
            fid_inception, "load_state_dict_from_url", lambda *args, **kwargs: state
        ):
            model = fid_inception.InceptionV3(
                [fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[FID_DIMS]]
            )
    except RuntimeError as error:  # load_state_dict: missing/unexpected keys, wrong shapes
        first = str(error).splitlines()[0]
        raise WmiError(
            f"{weights}: not pytorch-fid's FID Inception state dict ({FID_INCEPTION_FILE}): {first}"
        ) from error
    return model.eval().requires_grad_(False).to(device)


def fid_features(
    model: nn.Module, images: object, batch_size: int = 50, device: str | None = None
) -> np.ndarray:
    """pool3 features of each image, float64 ``(N, 2048)``, as pytorch-fid's ``get_activations``.

    ``model`` is :func:`load_fid_inception`'s; images in [0, 1] of any size (the model resizes
    to 299x299).
    """
    import torch

    batch = _as_nchw(images)
    if device is None:
        device = str(next(model.parameters()).device)
    out = np.empty((len(batch), FID_DIMS), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(batch), batch_size):
            x = batch[start : start + batch_size].to(device)
            pred = model(x)[0]  # (B, 2048, 1, 1)
            out[start : start + len(x)] = pred.reshape(len(x), -1).cpu().numpy()
    return out


def fid_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` of features ``(N, D)``, as pytorch-fid: float64,
    ``np.cov(rowvar=False)`` (normalized by N - 1)."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    from scipy import linalg

    # SciPy >= 1.16 deprecates ``disp`` (pytorch-fid still passes disp=False, which SciPy 1.18
    # removes); older SciPy prints to stdout unless disp=False.
    major, minor = (int(part) for part in __import__("scipy").__version__.split(".")[:2])
    if (major, minor) >= (1, 16):
        return linalg.sqrtm(matrix)
    return linalg.sqrtm(matrix, disp=False)[0]


def frechet_distance_from_statistics(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """pytorch-fid's ``calculate_frechet_distance``, written out.

    ``|mu1 - mu2|² + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2))``; if the square root is not
    finite, ``eps`` is added to both diagonals and it is taken again; a small imaginary part is
    dropped. Differs from pytorch-fid only in what it does not do: it prints nothing (our JSON
    may go to stdout), calls SciPy's ``sqrtm`` without the ``disp`` argument SciPy 1.18 removes,
    and returns NaN where pytorch-fid raises ``ValueError("Imaginary component …")``. For
    precomputed statistics only: on 2048-d statistics SciPy's ``sqrtm`` takes minutes on two
    cores; from features, use :func:`frechet_distance`.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise WmiError(f"FID: statistics differ in shape, {mu1.shape} vs {mu2.shape}")
    diff = mu1 - mu2
    covmean = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            return math.nan
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _covariance_factor(centered: np.ndarray) -> np.ndarray:
    """``L`` with ``L @ L.T`` the covariance of the rows, ``centered`` ``(N, D)`` (mean removed).

    ``centered.T / sqrt(N - 1)`` (``D x N``) when ``N <= D``, else ``V sqrt(Λ)`` (``D x D``)
    from the eigendecomposition of the covariance (negative rounding noise clipped to 0).
    """
    n, dims = centered.shape
    if n <= dims:
        return centered.T / math.sqrt(n - 1)
    eigenvalues, vectors = np.linalg.eigh(centered.T @ centered / (n - 1))
    return vectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two sets of features ``(N_a, D)`` and ``(N_b, D)`` (:func:`fid_features`).

    The value of pytorch-fid's ``calculate_frechet_distance`` on the features' means and
    ``np.cov`` covariances, ``|mu_a - mu_b|² + tr(S_a) + tr(S_b) - 2 tr sqrtm(S_a S_b)``,
    computed without the ``D x D`` matrix square root: with ``S = L Lᵀ``, the eigenvalues of
    ``S_a S_b`` are the squared singular values of ``L_aᵀ L_b``, so ``tr sqrtm(S_a S_b)`` is
    the sum of those singular values. ``L`` is ``D x N`` for ``N <= D`` (then this takes
    milliseconds where SciPy's ``sqrtm`` of the singular 2048x2048 product takes minutes on two
    cores) and ``D x D`` otherwise. Agrees with pytorch-fid to ~1e-7 relative (tests: 1e-5).

    NaN when either set has fewer than 2 images (the covariance is undefined). With fewer
    images than feature dimensions (2048) FID is biased upward; compare FIDs only over equal,
    large numbers of images.
    """
    features_a = np.asarray(features_a, dtype=np.float64)
    features_b = np.asarray(features_b, dtype=np.float64)
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise WmiError(f"FID: features {features_a.shape} and {features_b.shape} do not match")
    if len(features_a) < 2 or len(features_b) < 2:
        return math.nan
    mu_a, mu_b = features_a.mean(axis=0), features_b.mean(axis=0)
    centered_a, centered_b = features_a - mu_a, features_b - mu_b
    trace_a = float(np.sum(centered_a**2)) / (len(features_a) - 1)
    trace_b = float(np.sum(centered_b**2)) / (len(features_b) - 1)
    cross = _covariance_factor(centered_a).T @ _covariance_factor(centered_b)
    tr_covmean = float(np.linalg.svd(cross, compute_uv=False).sum())
    diff = mu_a - mu_b
    return float(diff.dot(diff) + trace_a + trace_b - 2.0 * tr_covmean)


def fid_by_group(
    features_pred: np.ndarray, features_gt: np.ndarray, groups: Sequence[Hashable]
) -> dict[Hashable, float]:
    """FID of the predictions against the ground truth over each group of rows.

    ``features_pred[i]`` and ``features_gt[i]`` belong to image ``i``, whose group (e.g. its
    hole-ratio bucket) is ``groups[i]``. Returns ``{group: FID}`` in order of first appearance;
    the FID over all images is ``frechet_distance(features_pred, features_gt)``.
    """
    if not (len(features_pred) == len(features_gt) == len(groups)):
        raise WmiError(
            f"FID: {len(features_pred)} predictions, {len(features_gt)} ground truths, "
            f"{len(groups)} groups"
        )
    rows: dict[Hashable, list[int]] = {}
    for i, group in enumerate(groups):
        rows.setdefault(group, []).append(i)
    fp, fg = np.asarray(features_pred), np.asarray(features_gt)
    return {group: frechet_distance(fp[idx], fg[idx]) for group, idx in rows.items()}


# --------------------------------------------------------------------------------------------
# The networks, loaded once


class PerceptualNets:
    """The LPIPS and FID networks an evaluation needs, loaded once and run once per image.

    Build with :meth:`load`, which leaves out (with a notice) what cannot run. Typical use in an
    evaluation: ``lpips(comp, gt)`` per batch for each method; ``fid_features(gt)`` once and
    ``fid_features(comp)`` once per method, then :func:`frechet_distance` /
    :func:`fid_by_group` on the cached features for the overall and per-bucket FID.
    """

    def __init__(
        self,
        lpips_model: nn.Module | None = None,
        inception: nn.Module | None = None,
        lpips_net: str | None = None,
        batch_size: int = 32,
        fid_weights: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.lpips_model = lpips_model
        self.inception = inception
        self.lpips_net = lpips_net
        self.batch_size = batch_size
        #: FID features of ground-truth files, by the file's SHA-256 (and, on disk, the
        #: weights'): each ground truth goes through the Inception once, however many
        #: methods, runs, masks (LaMa's layout) or evaluations score against it.
        self.gt_cache = GroundTruthFeatures(fid_weights, cache_dir) if inception else None

    @classmethod
    def load(
        cls,
        lpips_net: str | None = "alex",
        fid: bool = True,
        weights_dir: str | os.PathLike[str] | None = None,
        download: bool = False,
        device: str = "cpu",
        batch_size: int = 32,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> tuple[PerceptualNets, list[str]]:
        """Load what can be loaded; returns the nets and the one-line notices for the rest.

        Args:
            lpips_net: ``"alex"``, ``"vgg"`` or None (no LPIPS).
            fid: whether to load the FID Inception.
            weights_dir: ``--weights-dir`` (None: the torch hub cache).
            download: ``--download-weights``: fetch missing files first.
            cache_dir: a folder for the ground truths' FID features
                (:class:`GroundTruthFeatures`); None: kept in memory for this object only.

        Raises:
            WmiError: a weight file exists but is not the expected state dict.
        """
        wanted = ([f"lpips-{lpips_net}"] if lpips_net else []) + (["fid"] if fid else [])
        if lpips_net is not None and lpips_net not in LPIPS_NETS:
            raise WmiError(f"--lpips-net {lpips_net!r}: expected one of {', '.join(LPIPS_NETS)}")
        available, notices = perceptual_availability(wanted, weights_dir, download)
        lpips_model = inception = None
        if lpips_net is not None and f"lpips-{lpips_net}" in available:
            lpips_model = load_lpips(lpips_net, available[f"lpips-{lpips_net}"], device)
        if "fid" in available:
            inception = load_fid_inception(available["fid"], device)
        nets = cls(
            lpips_model,
            inception,
            lpips_net if lpips_model else None,
            batch_size,
            fid_weights=available.get("fid"),
            cache_dir=cache_dir,
        )
        return nets, notices

    @property
    def metrics(self) -> tuple[str, ...]:
        """The metric keys this object computes: a subset of ``("lpips", "fid")``."""
        return tuple(
            key
            for key, model in (("lpips", self.lpips_model), ("fid", self.inception))
            if model is not None
        )

    def lpips(self, a: object, b: object) -> np.ndarray:
        """Per-image LPIPS ``(N,)`` (see :func:`lpips_distances`)."""
        if self.lpips_model is None:
            raise WmiError("LPIPS is not loaded")
        return lpips_distances(self.lpips_model, a, b, self.batch_size)

    def fid_features(self, images: object) -> np.ndarray:
        """pool3 features ``(N, 2048)`` float64 (see :func:`fid_features`)."""
        if self.inception is None:
            raise WmiError("the FID Inception is not loaded")
        return fid_features(self.inception, images, self.batch_size)

    def lpips_many(self, comps: Mapping[str, object], gt: object) -> dict[str, np.ndarray]:
        """Per-image LPIPS ``(N,)`` of each method's images against one ground-truth batch.

        The same numbers as :meth:`lpips` per method, but the backbone runs on each ground
        truth once for all methods (``1 + M`` passes instead of ``2 M``); memory holds one
        batch's features.

        Args:
            comps: method -> images like ``gt``; gt: ``(N, H, W, 3)`` in [0, 1].
        """
        import torch

        if self.lpips_model is None:
            raise WmiError("LPIPS is not loaded")
        model = self.lpips_model
        device = str(next(model.parameters()).device)
        tg = _as_nchw(gt)
        tcs = {m: _as_nchw(c) for m, c in comps.items()}
        for m, tc in tcs.items():
            if tc.shape != tg.shape:
                raise WmiError(f"LPIPS: {m}'s images are {tuple(tc.shape)}, not {tuple(tg.shape)}")
        out = {m: np.empty(len(tg), dtype=np.float64) for m in comps}
        with torch.inference_mode():
            for start in range(0, len(tg), self.batch_size):
                stop = start + self.batch_size
                ref = lpips_features(model, tg[start:stop].to(device))
                for m, tc in tcs.items():
                    d = lpips_from_features(
                        model, lpips_features(model, tc[start:stop].to(device)), ref
                    )
                    out[m][start : start + len(d)] = d.double().cpu().numpy()
        return out

    def gt_fid_features(self, paths: Sequence[Path], images: np.ndarray) -> np.ndarray:
        """FID features ``(N, 2048)`` of ground-truth files, computed only for those not cached.

        Args:
            paths: the files ``images`` were read from (their bytes key the cache).
            images: ``(N, H, W, 3)`` float in [0, 1].
        """
        if self.inception is None or self.gt_cache is None:
            raise WmiError("the FID Inception is not loaded")
        keys = [self.gt_cache.key(p) for p in paths]
        found = {k: f for k in set(keys) if (f := self.gt_cache.get(k)) is not None}
        todo = [i for i, k in enumerate(keys) if k not in found]
        first = {}
        for i in todo:
            first.setdefault(keys[i], i)
        if first:
            rows = list(first.values())
            computed = self.fid_features(images[rows])
            for key, feature in zip(first, computed, strict=True):
                self.gt_cache.put(key, feature)
                found[key] = feature
        return np.stack([found[k] for k in keys]) if keys else np.empty((0, FID_DIMS))


class GroundTruthFeatures:
    """FID features of ground-truth files keyed by the file's SHA-256 and the weights'.

    Always kept in memory (16 KB per distinct file); with ``folder``, also written to
    ``folder/<weights' SHA-256, 16 hex>/<file's SHA-256>.npy`` (atomically) and read from there
    by later evaluations with the same network weights. A changed file or other weights give
    another key, so a stale entry is never used; an unreadable entry is computed again.

    Args:
        weights: the FID Inception's weight file (None: in memory only, under its identity).
        folder: the on-disk cache (None: in memory only).
    """

    def __init__(
        self, weights: str | os.PathLike[str] | None, folder: str | os.PathLike[str] | None
    ) -> None:
        from wmi.io.files import file_sha256

        self.memory: dict[str, np.ndarray] = {}
        self.folder = None
        if folder is not None and weights is not None:
            self.folder = Path(folder) / file_sha256(weights)[:16]
        self.hits = self.misses = 0

    @staticmethod
    def key(path: Path) -> str:
        """The content hash of a ground-truth file."""
        from wmi.io.files import file_sha256

        return file_sha256(path)

    def get(self, key: str) -> np.ndarray | None:
        """The cached features, or None (counted in ``hits`` / ``misses``)."""
        feature = self.memory.get(key)
        if feature is None and self.folder is not None:
            try:
                loaded = np.load(self.folder / f"{key}.npy", allow_pickle=False)
            except (OSError, ValueError):
                loaded = None
            if loaded is not None and loaded.shape == (FID_DIMS,):
                feature = self.memory[key] = loaded
        if feature is None:
            self.misses += 1
        else:
            self.hits += 1
        return feature

    def put(self, key: str, feature: np.ndarray) -> None:
        """Keep ``feature`` in memory and, with a folder, on disk."""
        self.memory[key] = feature
        if self.folder is not None:
            from wmi.io import atomic_path

            self.folder.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.folder / f"{key}.npy") as tmp, open(tmp, "wb") as f:
                np.save(f, feature, allow_pickle=False)
