"""The training dataset: ``(image, mask)`` pairs read from shards, for ``DataLoader``.

:class:`InpaintingDataset` gives image float32 ``(3, H, W)`` in [0, 1] and mask validity
float32 ``(1, H, W)`` (1 = known, 0 = hole); the holes come from a folder of mask files, the
DeepFill v2 free-form generator, or any callable. torch is imported when a dataset is made.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from wmi.data.shards import check_shards
from wmi.errors import WmiError
from wmi.io import list_masks, read_mask
from wmi.kinds import MASK_KINDS
from wmi.registry import load

if TYPE_CHECKING:
    import torch

#: Decoded masks kept per process (as bits): 64 MiB holds 8,192 masks of 256 x 256.
_MASK_CACHE_BYTES = 64 * 2**20
#: A mask source: ``(rng, height, width) -> bool (height, width)``, True = hole.
MaskFn = Callable[[np.random.Generator, int, int], np.ndarray]


class _KindMasks:
    """Training holes of a :data:`wmi.kinds.MASK_KINDS` kind, as a picklable mask source.

    Kinds with a training variant (freeform: DeepFill v2's strokes-or-box) use it.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
        kind = MASK_KINDS[self.kind]
        training = {"training": True} if kind.training else {}
        return load(kind.generator)(height, width, rng, **kind.options, **training)


class InpaintingDataset:
    """Training pairs ``(image, mask)`` read from shards, for ``torch.utils.data.DataLoader``.

    Each item ``index`` draws its randomness (crop, flip, which mask) from a generator seeded
    with ``(seed, epoch, index)``: the pairing of images and masks changes every epoch, is
    reproducible, and does not depend on ``num_workers`` or on how a ``DistributedSampler``
    splits the indices. Call :meth:`set_epoch` at the start of every epoch, like
    ``DistributedSampler.set_epoch``; the epoch lives in shared memory, so persistent
    workers see it too.

    HDF5 handles are not fork-safe, so files are opened lazily, once per process, on the
    first read in that process.

    Args:
        shard_paths: shard files (see :func:`wmi.data.find_shards`); their images must be at least
            ``size`` on both sides, and may be larger and each of its own size (the
            ``celeba``, ``imagenet`` and ``places`` presets): every item is then a crop of
            its image, at random with ``augment``, else the centre.
        masks: where the holes come from: a directory of mask PNGs (white = hole; a random
            one per item, resized with nearest neighbour to ``size`` if needed, randomly
            flipped when ``augment``), the name of a mask kind of :data:`wmi.kinds.MASK_KINDS`
            (``"freeform"``: DeepFill v2's free-form training masks; ``"box"``: a random
            rectangle; a registered name wins over a folder of that name), or a callable
            ``masks(rng, height, width) -> bool (height, width)`` with True = hole (it must be
            picklable for workers started with spawn/forkserver).
        size: side of the square crops in pixels.
        augment: random crops (when shard images are larger than ``size``) and random
            horizontal flips; without it, crops are centred and nothing is flipped.
        seed: base seed.
        uint8: give uint8 items (what ``wmi train`` uses: the device converts whole batches
            with :func:`to_float`); the randomness, and so the pairs, are the same.

    Items:
        ``image``: float32 tensor ``(3, size, size)`` in [0, 1]; with ``uint8``, uint8
        ``(size, size, 3)``.
        ``mask``: float32 tensor ``(1, size, size)``, validity: 1 = known, 0 = hole; with
        ``uint8``, the validity as bits, uint8 ``(1, size, ceil(size / 8))`` (see
        :func:`to_float`).

    Raises:
        WmiError: no shards, an unreadable or too small shard, a missing or empty mask folder.
    """

    def __init__(
        self,
        shard_paths: Sequence[str | os.PathLike[str]],
        masks: str | os.PathLike[str] | MaskFn,
        size: int = 256,
        augment: bool = True,
        seed: int = 0,
        uint8: bool = False,
    ) -> None:
        import torch

        if size < 1:
            raise WmiError(f"size {size}: must be a positive number of pixels")
        if seed < 0:
            raise WmiError(f"seed {seed}: must be 0 or more")
        infos = check_shards(shard_paths, size, exact=False)
        self.shard_paths = [i.path for i in infos]
        self.size = size
        self.augment = augment
        self.seed = seed
        self.uint8 = uint8
        # (height, width) of a shard's every image, or each image's (its own size)
        self._shapes = [_image_shapes(i.path) if i.variable else (i.height, i.width)
                        for i in infos]  # fmt: skip
        self._offsets = np.cumsum([0] + [i.count for i in infos])
        self._starts = [int(o) for o in self._offsets]  # for bisect: cheaper than numpy
        self._mask_fn: MaskFn | None = None
        self.mask_paths: list[Path] = []
        if callable(masks):
            self._mask_fn = masks
        elif isinstance(masks, str) and masks in MASK_KINDS:
            self._mask_fn = _KindMasks(masks)
        else:
            folder = Path(masks)
            if not folder.is_dir():
                raise WmiError(
                    f"{folder}: no such mask folder (give a folder of mask PNGs, or freeform)"
                )
            self.mask_paths = list_masks(folder, recursive=True)
            if not self.mask_paths:
                raise WmiError(f"{folder}: no mask images found")
        # 0-d int64 in shared memory: set_epoch in the main process reaches every worker.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._files: dict[int, Any] = {}
        self._mask_cache: dict[int, np.ndarray] = {}  # mask index -> packed bits, per process
        self._pid = os.getpid()

    def __len__(self) -> int:
        return int(self._offsets[-1])

    @property
    def epoch(self) -> int:
        """The epoch set by :meth:`set_epoch` (0 at first)."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch (>= 0) whose random pairing, crops and flips the items use."""
        if epoch < 0:
            raise ValueError(f"epoch {epoch}: must be 0 or more")
        self._epoch.fill_(int(epoch))

    def check_masks(self) -> None:
        """Read every mask file of the folder once (threads), before training starts.

        A file that cannot be read fails here, with its name, instead of in a loader worker at
        some step of the run. Does nothing for generated masks.

        Raises:
            WmiError: one line: how many files cannot be read, and the first one's problem.
        """
        from concurrent.futures import ThreadPoolExecutor

        if not self.mask_paths:
            return

        def problem(path: Path) -> str | None:
            try:
                read_mask(path)
            except WmiError as exc:
                return str(exc)
            return None

        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            problems = [p for p in pool.map(problem, self.mask_paths) if p is not None]
        if problems:
            folder = self.mask_paths[0].parent
            raise WmiError(
                f"--masks: {len(problems)} of {len(self.mask_paths)} mask files in {folder} "
                f"cannot be read; the first: {problems[0]}"
            )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}  # h5py handles cannot be pickled; reopened in the new process
        state["_mask_cache"] = {}  # rebuilt per process; keeps worker start-up light
        return state

    def _shape_of(self, index: int) -> tuple[int, int]:
        """``(height, width)`` of image ``index`` as stored (at least ``size`` a side)."""
        shard = self._shard(index)
        shape = self._shapes[shard]
        if isinstance(shape, tuple):
            return shape
        h, w = shape[index - self._starts[shard]]
        return int(h), int(w)

    def _shard(self, index: int) -> int:
        """The shard that holds image ``index`` (0 <= index < len)."""
        return bisect.bisect_right(self._starts, index) - 1

    def _entry(self, shard: int) -> tuple[Any, Any, bool]:
        """``(file, images dataset, one uncompressed chunk per image)`` of ``shard``, opened
        once per process (handles inherited through fork belong to the parent)."""
        import h5py

        if self._pid != os.getpid():  # forked: inherited handles belong to the parent
            self._files = {}
            self._pid = os.getpid()
        entry = self._files.get(shard)
        if entry is None:
            f = h5py.File(self.shard_paths[shard], "r", locking=False)
            ds = f["images"]
            direct = ds.ndim == 4 and ds.compression is None and ds.chunks == (1, *ds.shape[1:])
            entry = self._files[shard] = (f, ds, direct)
        return entry

    def _read_direct(self, index: int, out: np.ndarray) -> bool:
        """Read image ``index`` into contiguous uint8 ``out`` when its chunk's bytes are the
        image (uncompressed, one image per chunk); False, and nothing read, otherwise."""
        shard = self._shard(index)
        _, ds, direct = self._entry(shard)
        if direct:
            local = index - self._starts[shard]
            ds.id.read_direct_chunk((local, 0, 0, 0), out=out.reshape(-1))
        return direct

    def _image(self, index: int) -> np.ndarray:
        """uint8 ``(H, W, 3)`` image ``index``, read through this process's own file handle."""
        shard = self._shard(index)
        _, ds, direct = self._entry(shard)
        if ds.ndim == 1:  # images of their own sizes: flat rows
            return ds[index - self._starts[shard]].reshape(*self._shape_of(index), 3)
        if not direct:
            return ds[index - self._starts[shard]]
        image = np.empty((*self._shapes[shard], 3), np.uint8)
        self._read_direct(index, image)
        return image

    def _hole(self, rng: np.random.Generator) -> np.ndarray:
        size = self.size
        if self._mask_fn is not None:
            hole = np.asarray(self._mask_fn(rng, size, size), dtype=bool)
            if hole.shape != (size, size):
                raise ValueError(
                    f"mask source returned shape {hole.shape}, expected {(size, size)}"
                )
            return hole
        k = int(rng.integers(len(self.mask_paths)))
        packed = self._mask_cache.get(k)
        if packed is None:
            hole = read_mask(self.mask_paths[k])
            if hole.shape != (size, size):
                resized = Image.fromarray(hole.astype(np.uint8) * 255).resize(
                    (size, size), Image.NEAREST
                )
                hole = np.asarray(resized) > 127
            if len(self._mask_cache) < _MASK_CACHE_BYTES * 8 // (size * size):
                self._mask_cache[k] = np.packbits(hole)
        else:
            hole = np.unpackbits(packed, count=size * size).reshape(size, size).view(bool)
        if self.augment:
            if rng.random() < 0.5:
                hole = hole[:, ::-1]
            if rng.random() < 0.5:
                hole = hole[::-1]
        return hole

    def _plan(self, index: int) -> tuple[int, np.random.Generator, int, int, bool]:
        """``(index, rng, top, left, flip)`` of item ``index``: its generator, after the crop
        and the flip are drawn from it (the hole is drawn next)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} images")
        index = int(index) % n
        rng = np.random.default_rng([self.seed, self.epoch, index])
        h, w = self._shape_of(index)
        size, top, left = self.size, 0, 0
        if (h, w) != (size, size):
            if self.augment:
                top, left = int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1))
            else:
                top, left = (h - size) // 2, (w - size) // 2
        flip = bool(self.augment and rng.random() < 0.5)
        return index, rng, top, left, flip

    def _crop_into(self, index: int, top: int, left: int, flip: bool, out: np.ndarray) -> None:
        """Write the (flipped) crop of image ``index`` into uint8 ``out`` ``(size, size, 3)``."""
        import cv2

        size = self.size
        full = self._shape_of(index) == (size, size)
        if full and not flip and self._read_direct(index, out):
            return
        img = self._image(index)[top : top + size, left : left + size]
        if flip:
            cv2.flip(img, 1, dst=out)
        else:
            out[...] = img

    def _item_into(self, index: int, image: np.ndarray, valid: np.ndarray) -> None:
        """Item ``index`` in uint8 into ``image`` ``(size, size, 3)`` and ``valid`` (bits)."""
        index, rng, top, left, flip = self._plan(index)
        self._crop_into(index, top, left, flip, image)
        # 8 pixels a byte, the first the high bit; 1 = known
        np.invert(np.packbits(self._hole(rng), axis=-1), out=valid)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        import cv2
        import torch

        size = self.size
        if self.uint8:
            image = np.empty((size, size, 3), np.uint8)
            valid = np.empty((1, size, -(-size // 8)), np.uint8)
            self._item_into(index, image, valid[0])
            return torch.from_numpy(image), torch.from_numpy(valid)
        index, rng, top, left, flip = self._plan(index)
        img = self._image(index)[top : top + size, left : left + size]
        if flip:
            img = cv2.flip(img, 1)
        hole = self._hole(rng)
        # Channel planes through OpenCV, then one contiguous uint8 -> float pass: fast, and
        # independent of torch's intra-op thread pool (costly for small tensors).
        image = np.empty((3, size, size), np.float32)
        for c, plane in enumerate(cv2.split(img)):
            image[c] = plane
        image /= np.float32(255.0)
        mask = np.logical_not(hole)[None].astype(np.float32)
        return torch.from_numpy(image), torch.from_numpy(mask)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The items at ``indices``, what ``DataLoader`` asks for one batch.

        With ``uint8``, the items are written straight into one batch tensor per field (in
        shared memory in a loader worker): :func:`collate` hands those over without a copy,
        any other collate function gets the items as usual. The items are those of
        ``dataset[i]``, bit for bit.
        """
        if not self.uint8:
            return [self[i] for i in indices]
        size, n = self.size, len(indices)
        images = _new_batch((n, size, size, 3))
        valid = _new_batch((n, 1, size, -(-size // 8)))
        image_arr, valid_arr = images.numpy(), valid.numpy()
        for k, index in enumerate(indices):
            self._item_into(index, image_arr[k], valid_arr[k, 0])
        return _Batch(zip(images.unbind(), valid.unbind(), strict=True), (images, valid))


class _Batch(list):
    """Items that are rows of batch tensors already stacked (``stacked``), for :func:`collate`."""

    def __init__(self, items: Any, stacked: tuple[torch.Tensor, torch.Tensor]) -> None:
        super().__init__(items)
        self.stacked = stacked


def _new_batch(shape: tuple[int, ...]) -> torch.Tensor:
    """uint8 tensor ``shape``; in a loader worker in shared memory, as ``default_collate``
    makes its batches (they reach the main process without a copy)."""
    import torch
    from torch.utils.data import get_worker_info

    if get_worker_info() is None:
        return torch.empty(shape, dtype=torch.uint8)
    elem = torch.empty(0, dtype=torch.uint8)
    storage = elem._typed_storage()._new_shared(int(np.prod(shape)), device=elem.device)
    return elem.new(storage).resize_(*shape)


def collate(items: Sequence[Any]) -> Any:
    """``DataLoader``'s ``collate_fn`` for :class:`InpaintingDataset`: ``[images, masks]``.

    The batches of ``default_collate``; uint8 items from :meth:`InpaintingDataset.__getitems__`
    are already stacked and pass as they are (no second copy of every batch).
    """
    stacked = getattr(items, "stacked", None)
    if stacked is not None:
        return list(stacked)
    from torch.utils.data import default_collate

    return default_collate(items)


def to_float(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Float32 items (or batches) from the uint8 ones of ``InpaintingDataset(uint8=True)``.

    Runs where the tensors are (the GPU, in training) and gives exactly the float32 values of
    the default items: ``image / 255`` is a true IEEE division by a tensor on the same device
    (CUDA would replace a division by a Python number with a multiplication by its
    reciprocal, which differs in the last bit for some values).

    Args:
        image: uint8 ``(..., H, W, 3)``.
        mask: uint8 ``(..., 1, H, ceil(W / 8))``: validity bits, 8 pixels a byte, the first
            pixel in the highest bit (``np.packbits`` along the rows).

    Returns:
        ``(image, mask)``: float32 ``(..., 3, H, W)`` in [0, 1] (a channels-last view of the
        new tensor) and float32 ``(..., 1, H, W)``, 1 = known, 0 = hole.

    Raises:
        ValueError: tensors that are not such items.
    """
    import torch

    width = image.shape[-2]
    if image.dtype != torch.uint8 or image.shape[-1] != 3:
        raise ValueError(f"image {tuple(image.shape)} {image.dtype}: expected uint8 (..., H, W, 3)")
    if mask.dtype != torch.uint8 or mask.shape[-1] != -(-width // 8):
        raise ValueError(
            f"mask {tuple(mask.shape)} {mask.dtype}: expected uint8 bits (..., 1, H, W / 8)"
        )
    scale = torch.full((), 255.0, dtype=torch.float32, device=image.device)
    shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=mask.device)
    bits = (mask.unsqueeze(-1) >> shifts) & 1  # (..., 1, H, W / 8, 8)
    valid = bits.flatten(-2)[..., :width].float()
    return image.movedim(-1, -3).float().div_(scale), valid


def _image_shapes(path: Path) -> np.ndarray:
    """The ``shapes`` dataset of a shard of images of their own sizes: int32 ``(N, 2)``."""
    import h5py

    with h5py.File(path, "r", locking=False) as f:
        return f["shapes"][:]
