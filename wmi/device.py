"""The compute device (``--device``, :data:`wmi.kinds.DEVICES`) and precision (``--amp``,
:data:`wmi.kinds.AMP_MODES`)."""

from __future__ import annotations

import torch

from wmi.errors import WmiError
from wmi.kinds import AMP_MODES, AUTO, DEVICES


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(choice: str = "auto") -> torch.device:
    """``auto`` → CUDA, else Apple's MPS, else CPU; an unavailable device is a user error."""
    choice = DEVICES[choice].name
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if choice == "cuda" and not torch.cuda.is_available():
        raise WmiError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if choice == "mps" and not _mps_available():
        raise WmiError("--device mps: no Apple MPS device is available (use --device cpu or auto)")
    return torch.device(choice)


def available_bytes(device: torch.device) -> int | None:
    """Memory a new allocation on ``device`` can use now, in bytes; None where unknown.

    CUDA: the free memory of the device. CPU: ``MemAvailable`` of ``/proc/meminfo`` (Linux),
    lowered to what is left under this process's address-space limit (``ulimit -v``,
    ``prlimit --as``) and its cgroup's ``memory.max`` when those are set. Reads files, not
    psutil.
    """
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type != "cpu":
        return None
    limits = []
    meminfo = _read_numbers("/proc/meminfo", "MemAvailable:")
    if meminfo is not None:
        limits.append(meminfo * 1024)
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    size = _read_numbers("/proc/self/status", "VmSize:")
    if soft != resource.RLIM_INFINITY and size is not None:
        limits.append(max(0, soft - size * 1024))
    cap, used = (
        _read_numbers("/sys/fs/cgroup/memory.max"),
        _read_numbers("/sys/fs/cgroup/memory.current"),
    )
    if cap is not None and used is not None:
        limits.append(max(0, cap - used))
    return min(limits) if limits else None


def _read_numbers(path: str, key: str = "") -> int | None:
    """The first integer after ``key`` in the text file ``path`` (None: no file, "max", ...)."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                if line.startswith(key):
                    return int(line[len(key) :].split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return None


def device_name(device: torch.device) -> str:
    """A human-readable name: the GPU model, Apple's MPS, or the CPU with its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return f"CPU ({torch.get_num_threads()} threads)"


def amp_dtype(mode: str) -> torch.dtype | None:
    """The autocast dtype of a resolved AMP mode (None: float32).

    Raises:
        WmiError: "auto" (resolve it first) or an unknown mode.
    """
    if mode == AUTO or mode not in AMP_MODES:
        modes = ", ".join(n for n in AMP_MODES if n != AUTO)
        raise WmiError(f"amp: expected one of {modes}, got {mode!r}")
    name = AMP_MODES[mode].dtype
    return None if name is None else getattr(torch, name)
