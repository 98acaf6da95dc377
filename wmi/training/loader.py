"""The data of a run: the shard datasets, a sampler that resumes mid-epoch, the loaders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from wmi.errors import WmiError
from wmi.training.config import TrainConfig
from wmi.training.run import Dist, ignore_stop_signals


class EpochSampler(DistributedSampler):
    """DistributedSampler that can start an epoch part-way through, for exact resumption.

    The order of epoch ``e`` is ``DistributedSampler``'s shuffle for ``seed + e`` (the same on
    every rank, each taking every ``world``-th index); ``set_epoch(e, skip)`` drops the first
    ``skip`` indices of this rank's share, i.e. the batches already trained on.
    """

    def __init__(self, dataset: Dataset, world: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:  # type: ignore[override]
        super().set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip :])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def open_datasets(cfg: TrainConfig) -> tuple[Dataset, Dataset | None]:
    """The train split (augmented) and the val split (fixed crops and seeded masks) of ``cfg.data``.

    Raises:
        WmiError: missing data folder, no train shards, shards of another size, bad masks.
    """
    if cfg.data is None:
        raise WmiError("--data is required: a folder of shards from wmi data prepare")
    data = Path(cfg.data)
    if not data.is_dir():
        raise WmiError(f"--data {data}: no such directory")
    from wmi.data import InpaintingDataset, check_shards, find_shards
    from wmi.data.shards import check_manifest

    check_manifest(data)  # a deleted shard would train on fewer images without a word
    shards = find_shards(data, "train")
    if not shards:
        raise WmiError(
            f"--data {data}: no training shards (train-*.h5); create them with wmi data prepare"
        )
    check_shards(shards, cfg.size, exact=True)
    # uint8 items: a fifth of the bytes to collate, pin and copy; to_device converts them.
    train_set = InpaintingDataset(
        shards, cfg.masks, size=cfg.size, augment=True, seed=cfg.seed, uint8=True
    )
    train_set.check_masks()  # now, not at some step in a loader worker
    val_shards = find_shards(data, "val")
    val_set = None
    if val_shards:
        check_shards(val_shards, cfg.size, exact=True)
        # augment=False and epoch 0 forever: the same crops and masks at every validation.
        val_set = InpaintingDataset(
            val_shards, cfg.masks, size=cfg.size, augment=False, seed=cfg.seed, uint8=True
        )
    return train_set, val_set


def check_train_size(train_set: Dataset, cfg: TrainConfig, dist: Dist) -> None:
    """Raise WmiError when the training split cannot fill one step on every process."""
    if len(train_set) < cfg.batch_size * dist.world:
        raise WmiError(
            f"the training split has {len(train_set)} images, fewer than one step needs "
            f"({cfg.batch_size} per process × {dist.world})"
        )


class Batches:
    """The training batches of one process, in order, resumable at any (epoch, position).

    Args:
        train_set: the training split.
        cfg: batch size, workers and seed.
        dist: this process's rank among ``world``.
        device: where batches go (pinned memory on CUDA).
    """

    def __init__(
        self, train_set: Dataset, cfg: TrainConfig, dist: Dist, device: torch.device
    ) -> None:
        from wmi.data import collate

        self.dataset, self.batch_size = train_set, cfg.batch_size
        self.sampler = EpochSampler(train_set, dist.world, dist.rank, cfg.seed)
        #: full batches per epoch (the last partial batch is dropped)
        self.per_epoch = len(self.sampler) // cfg.batch_size
        self.loader = DataLoader(
            train_set,
            batch_size=cfg.batch_size,
            sampler=self.sampler,
            num_workers=cfg.workers,
            pin_memory=device.type == "cuda",
            drop_last=True,
            collate_fn=collate,  # uint8 batches come stacked from the dataset: no second copy
            persistent_workers=cfg.workers > 0,
            worker_init_fn=ignore_stop_signals,
            # Worker seeds come from here, not from the global RNG (the items seed themselves).
            generator=torch.Generator().manual_seed(cfg.seed),
        )
        self._iterator: Iterator | None = None
        self._epoch = -1

    def next(self, epoch: int, position: int) -> tuple[Tensor, Tensor]:
        """The next ``(image, mask)`` batch; a new ``epoch`` (or the first call) starts at
        batch ``position`` of it, the batches before it skipped (resumption)."""
        if self._iterator is None or epoch != self._epoch:
            self.sampler.set_epoch(epoch, skip=position * self.batch_size)
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            self._iterator, self._epoch = iter(self.loader), epoch
        try:
            return next(self._iterator)
        except WmiError as exc:
            # From a worker, the message holds the worker's traceback: keep its last line.
            message = _worker_message(str(exc))
        self.close()
        raise WmiError(message)

    def close(self) -> None:
        """Stop the worker processes now (after an error they would outlive the run's end,
        and Python's exit would kill them, with a traceback)."""
        iterator, self._iterator = self._iterator, None
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()  # what DataLoader runs when an iterator is deleted


def _worker_message(message: str) -> str:
    """The message of a WmiError re-raised by DataLoader from a worker (else ``message``)."""
    marker = "WmiError: "
    last = message.strip().splitlines()[-1] if message.strip() else message
    return last.split(marker, 1)[1] if marker in last else message


def val_loader(val_set: Dataset | None, cfg: TrainConfig, dist: Dist) -> DataLoader | None:
    """The first ``cfg.val_images`` of the val split, on rank 0; None when there is nothing."""
    if val_set is None or cfg.val_images <= 0 or not dist.main:
        return None
    from wmi.data import collate

    subset = Subset(val_set, range(min(cfg.val_images, len(val_set))))
    return DataLoader(subset, batch_size=cfg.batch_size, num_workers=0, collate_fn=collate)


def to_device(
    image: Tensor, mask: Tensor, device: torch.device, channels_last: bool
) -> tuple[Tensor, Tensor]:
    """A batch on ``device`` as float32 in the run's memory format.

    ``image``, ``mask``: float32 ``(N, 3, H, W)`` and ``(N, 1, H, W)``, or the uint8 batches of
    ``InpaintingDataset(uint8=True)``, copied as they are and converted on ``device`` by
    :func:`wmi.data.dataset.to_float` (the same values).
    """
    from wmi.data.dataset import to_float

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    image = image.to(device, non_blocking=True)
    mask = mask.to(device, non_blocking=True)
    if image.dtype == torch.uint8:
        image, mask = to_float(image, mask)
    return image.contiguous(memory_format=fmt), mask.contiguous(memory_format=fmt)
