"""The ONNX graph of a network: ``wmi export --onnx`` (:func:`wmi.models.export.export_model`).

ONNX is for serving without PyTorch: onnxruntime (CPU, CUDA, TensorRT, DirectML, the web)
or any other ONNX runtime runs the graph with ``image`` and ``mask`` in and ``output`` out.
:func:`check_onnx` compares a graph with the network it came from.
"""

from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path
from typing import Any

import torch

from wmi.errors import WmiError
from wmi.io import atomic_path
from wmi.models.unet import InpaintingUNet

#: ONNX opset of :func:`export_onnx` (the lowest the torch.export-based exporter writes well).
DEFAULT_OPSET = 18


def _sum_pool_to_mean_pool(exported: Any) -> int:
    """Rewrite ``avg_pool2d(..., divisor_override=d)`` as ``avg_pool2d(...) · (kH·kW / d)``.

    ``wmi.layers.conv.mask_window_sum`` takes the exact window sum of the mask with
    ``F.avg_pool2d(m, k, s, p, count_include_pad=True, divisor_override=1)``. ONNX's
    AveragePool has no divisor, and torch's exporter drops ``divisor_override`` without a
    word: the exported network then divides every mask sum by k² and is wrong. With
    ``count_include_pad`` (and no ``ceil_mode``) every window is divided by exactly kH·kW, so
    multiplying back gives the sum (to a rounding error of the last bit).

    Returns:
        how many pooling calls were rewritten (graphs nested under autocast included).
    """
    pool = torch.ops.aten.avg_pool2d.default
    names = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor")
    count = 0
    for gm in exported.graph_module.modules():
        if not isinstance(gm, torch.fx.GraphModule):
            continue
        graph, changed = gm.graph, False
        for node in list(graph.nodes):
            if node.op != "call_function" or node.target is not pool:
                continue
            values = dict(zip(names, node.args[1:], strict=False))
            values.update({k.replace("_override", ""): v for k, v in node.kwargs.items()})
            divisor = values.get("divisor")
            if divisor is None:
                continue
            if values.get("ceil_mode") or not values.get("count_include_pad", True):
                raise WmiError("ONNX export: a pooled sum with ceil_mode or without padding")
            kernel = list(values["kernel_size"])
            kh, kw = (kernel * 2)[:2] if len(kernel) == 1 else kernel
            node.args = (
                node.args[0],
                values["kernel_size"],
                values.get("stride", []),
                values.get("padding", 0),
                False,
                True,
                None,
            )
            node.kwargs = {}
            with graph.inserting_after(node):
                scaled = graph.call_function(
                    torch.ops.aten.mul.Tensor, (node, float(kh * kw) / float(divisor))
                )
            node.replace_all_uses_with(scaled, delete_user_cb=lambda user, s=scaled: user is not s)
            count += 1
            changed = True
        if changed:
            graph.lint()
            gm.recompile()
    return count


def export_onnx(
    model: InpaintingUNet, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET
) -> Path:
    """Write ``model`` (in eval mode, float32, on the CPU) as an ONNX graph, atomically.

    Inputs ``image`` ``(N, C, H, W)`` and ``mask`` ``(N, 1, H, W)`` (validity, 1 = known),
    output ``output`` ``(N, C, H, W)``, the raw network output (composite it with the known
    pixels yourself). N, H and W are dynamic; H and W must be multiples of ``2**layers``.

    Uses torch's ``torch.export``-based exporter (``dynamo=True``, which needs the ``onnx``
    and ``onnxscript`` packages). The TorchScript exporter cannot trace the masked layers:
    ``wmi.layers.conv`` reads the kernel size from ``weight.shape``, which tracing turns into
    tensors.

    Raises:
        WmiError: ``onnx``/``onnxscript`` missing, or the export failed (the reason in one line).
    """
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise WmiError(
            "ONNX export needs the 'onnx' and 'onnxscript' packages: pip install 'wmi[export]'"
        ) from None
    from torch.export import Dim

    path = Path(path)
    net = copy.deepcopy(model).to("cpu", torch.float32).eval()
    mult = net.multiple
    # batch 2 and two different sizes: torch.export specializes dimensions of size 1 and
    # would tie H to W if they were equal in the example
    image = torch.rand(2, net.in_channels, 2 * mult, 3 * mult)
    mask = (torch.rand(2, 1, 2 * mult, 3 * mult) > 0.3).float()
    batch, rows, cols = Dim("batch", min=1), Dim("rows", min=1), Dim("cols", min=1)
    dims = {0: batch, 2: mult * rows, 3: mult * cols}
    try:
        with torch.no_grad(), _quiet():
            exported = torch.export.export(
                net, (image, mask), dynamic_shapes={"image": dims, "mask": dims}
            )
            _sum_pool_to_mean_pool(exported)
            program = torch.onnx.export(
                exported,
                (image, mask),
                dynamo=True,
                opset_version=opset,
                input_names=["image", "mask"],
                output_names=["output"],
                verbose=False,
            )
    except WmiError:
        raise
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise WmiError(
            f"ONNX export failed: {exc.__class__.__name__}: {reason[:200]}".rstrip(": ")
        ) from None
    _name_dims(program.model, mult)
    with atomic_path(path) as tmp:
        program.save(str(tmp))
    return path


def _name_dims(model_ir: Any, mult: int) -> None:
    """Readable symbolic dimensions: ``batch``, ``height``, ``width`` on inputs and output."""
    with contextlib.suppress(Exception):  # cosmetic: an IR change must not break the export
        for value in [*model_ir.graph.inputs, *model_ir.graph.outputs]:
            shape = value.shape
            if shape is None or len(shape) != 4:
                continue
            dims = list(shape)
            for i, name in ((0, "batch"), (2, "height"), (3, "width")):
                if not isinstance(dims[i], int):
                    dims[i] = name
            value.shape = type(shape)(dims)


@contextlib.contextmanager
def _quiet():
    """Silence the exporter's progress lines and warnings (they go to stdout)."""
    import io
    import warnings

    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        yield


def check_onnx(
    model: InpaintingUNet,
    path: str | os.PathLike[str],
    shapes: tuple[tuple[int, int, int], ...] = ((1, 2, 2), (3, 3, 1)),
    seed: int = 0,
) -> float:
    """Largest absolute difference between onnxruntime (CPU) and PyTorch on random inputs.

    Args:
        model: the network the graph was exported from.
        path: the ONNX file.
        shapes: ``(batch, H / 2**layers, W / 2**layers)`` per comparison.
        seed: seeds the random images and masks (holes of about a third of the pixels).

    Raises:
        WmiError: onnxruntime is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError:
        raise WmiError("checking an ONNX graph needs 'onnxruntime'") from None
    net = copy.deepcopy(model).to("cpu", torch.float32).eval()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(seed)
    worst = 0.0
    for n, rows, cols in shapes:
        h, w = rows * net.multiple, cols * net.multiple
        image = torch.rand(n, net.in_channels, h, w, generator=gen)
        mask = (torch.rand(n, 1, h, w, generator=gen) > 0.3).float()
        with torch.no_grad():
            ref = net(image, mask).numpy()
        (out,) = session.run(None, {"image": image.numpy(), "mask": mask.numpy()})
        worst = max(worst, float(abs(out - ref).max()))
    return worst
