"""``wmi bench``: the speed claims, each as a ratio against a baseline measured in the same run."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

from wmi.cli.common import choice, make_console, make_table, progress_bar
from wmi.kinds import ARCH_LIMITS, ARCHS, CONV_KINDS, DEVICES, MAX_SIDE

#: What a suite's runner gets to show progress: ``progress(variant, done, total)``.
SuiteProgress = Callable[[str, int, int], None]


class Suite(str, Enum):
    """What ``wmi bench`` measures (subjects, not a list of kinds)."""

    layers = "layers"
    unet = "unet"
    train = "train"
    data = "data"
    inpaint = "inpaint"
    all = "all"


@dataclass(frozen=True)
class Options:
    """The shape options of ``wmi bench``; None = the suite's own default."""

    size: int | None = None
    batch_size: int | None = None
    layers: int | None = None
    modes: tuple[str, ...] = ()
    rounds: int = 5
    archs: tuple[str, ...] = ()
    convs: tuple[str, ...] = ()


def _run_layers(device: Any, opts: Options, progress: SuiteProgress) -> dict[str, Any]:
    from wmi.bench.unet import benchmark_layers

    return benchmark_layers(device, rounds=opts.rounds)


def _unet_shape(opts: Options) -> dict[str, Any]:
    """The unet suite's size, batches and layers: the options given, else its defaults."""
    return {
        "size": opts.size or 256,
        "batches": (opts.batch_size,) if opts.batch_size else (1, 8),
        "layers": opts.layers or 7,
    }


def _run_unet(device: Any, opts: Options, progress: SuiteProgress) -> dict[str, Any]:
    from wmi.bench.unet import benchmark_unet

    modes = opts.modes or ("fp32",)
    rows, result = [], {}
    for mode in modes:
        result = benchmark_unet(
            device,
            **_unet_shape(opts),
            rounds=opts.rounds,
            mode=mode,
            progress=lambda variant, done, total, mode=mode: progress(
                f"{mode}, {variant}", done, total
            ),
        )
        rows += [{"mode": mode, **row} for row in result["rows"]]
    return {**result, "mode": list(modes), "rows": rows}


def _run_train(device: Any, opts: Options, progress: SuiteProgress) -> dict[str, Any]:
    from wmi.bench.train import BENCH_MODES, benchmark_train

    if device.type == "cuda":  # the paper's shape, every precision mode
        shape = {"size": 256, "batch_size": 25, "layers": 7, "modes": tuple(BENCH_MODES)}
    else:  # a CPU step at 256², batch 25 with VGG16 takes minutes: a smaller shape, no compile
        shape = {"size": 64, "batch_size": 4, "layers": 6, "modes": ("fp32", "bf16+cl")}
    given = {"size": opts.size, "batch_size": opts.batch_size, "layers": opts.layers}
    shape.update({k: v for k, v in given.items() if v is not None})
    if opts.modes:
        shape["modes"] = opts.modes
    if opts.convs:
        shape["convs"] = opts.convs
    # the U-Net is always measured: its plain conv is the baseline of every ratio
    archs = tuple(a for a in opts.archs if not ARCHS[a].takes_conv)
    return benchmark_train(device, rounds=opts.rounds, archs=archs, **shape)


def _run_data(device: Any, opts: Options, progress: SuiteProgress) -> dict[str, Any]:
    from wmi.bench.data import benchmark_data

    # 600 synthetic photos: enough for the loader to reach steady state; decoded in-process
    result = benchmark_data(
        size=opts.size or 256,
        images=600,
        masks="freeform",
        prepare_workers=0,
        rounds=opts.rounds,
        **({"batch_size": opts.batch_size} if opts.batch_size else {}),
    )
    return {**result["runs"][0], "device_name": "CPU"}


def _run_inpaint(device: Any, opts: Options, progress: SuiteProgress) -> dict[str, Any]:
    from wmi.bench.inpaint import benchmark_inpaint

    result = benchmark_inpaint(size=opts.size or 256, repeats=max(opts.rounds, 3))
    rows = [{"method": name, **values} for name, values in result["methods"].items()]
    return {**result, "rows": rows, "device_name": "CPU"}


#: suite name -> runner(device, options, progress) returning a dict with a "rows" list
SUITES: dict[str, Callable[[Any, Options, SuiteProgress], dict[str, Any]]] = {
    "layers": _run_layers,
    "unet": _run_unet,
    "train": _run_train,
    "data": _run_data,
    "inpaint": _run_inpaint,
}


#: Columns of the tables when stdout is not a terminal: wide enough for every suite's rows.
TABLE_WIDTH = 200


def render(name: str, result: dict[str, Any], console: "Console") -> None:
    """Print one suite's rows as a table, columns taken from the rows' keys."""
    rows = result.get("rows", [])
    table = make_table(title=f"{name} — {result.get('device_name', '')}", title_justify="left")
    if not rows:
        console.print(table)
        return
    for key in rows[0]:
        table.add_column(key, justify="right" if isinstance(rows[0][key], float) else "left")
    for row in rows:
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)


def _run_suite(name: str, device: Any, opts: Options) -> dict[str, Any]:
    """Run one suite behind a progress bar that names the variant being timed."""
    with progress_bar(transient=True) as bar:
        task = bar.add_task(f"{name} on {device}", total=None)

        def progress(variant: str, done: int, total: int) -> None:
            text = f"{name} on {device}: {variant}"
            bar.update(task, description=text, completed=done, total=total)

        return SUITES[name](device, opts, progress)


def _mode(value: str) -> str:
    from wmi.bench.train import BENCH_MODES

    if value not in BENCH_MODES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(BENCH_MODES)}")
    return value


def bench(
    suite: Suite = typer.Argument(Suite.all, help="Which measurements to run."),
    device: str = choice(DEVICES, "auto", "--device", help="Where to run."),
    size: int | None = typer.Option(
        None,
        min=16,
        max=MAX_SIDE,
        help="Image side in pixels, a multiple of 2**layers.",
        show_default="256; 64 for train on a CPU",
    ),
    batch_size: int | None = typer.Option(
        None,
        min=1,
        max=4096,
        help="Batch size.",
        show_default="unet: 1 and 8; train: 25 on a GPU, 4 on a CPU; data: 32",
    ),
    layers: int | None = typer.Option(
        None,
        min=1,
        max=ARCH_LIMITS["layers"][1],
        help="U-Net depth (unet, train).",
        show_default="7; 6 for train on a CPU",
    ),
    mode: list[str] = typer.Option(
        [],
        "--mode",
        parser=_mode,
        metavar="[fp32|bf16+cl|bf16+cl+compile]",
        help="Precision mode (unet, train; repeat for several): fp32, bf16+cl (bf16 autocast + "
        "channels_last), bf16+cl+compile (and torch.compile).",
        show_default="unet: fp32; train: all on a GPU, fp32 and bf16+cl on a CPU",
    ),
    rounds: int = typer.Option(
        5, min=1, max=1000, help="Timed rounds per variant; the median is shown."
    ),
    arch: list[str] = choice(
        ARCHS,
        [],
        "--arch",
        help="train: also time these archs' steps, critics included (repeat for several; the "
        "U-Net is always timed):",
        show_default="unet only",
    ),
    conv: list[str] = choice(
        CONV_KINDS,
        [],
        "--conv",
        help="train: the U-Net's conv kinds (repeat for several):",
        show_default="weighted and plain",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON on stdout."),
) -> None:
    """Measure speed as ratios against a baseline timed in the same run.

    layers: each conv kind against plain convolution on U-Net layer shapes.
    unet: forward and forward+backward of the U-Net per conv kind against the plain U-Net;
    at the default size about 5 minutes on a 2-core CPU (294 s measured), seconds on a GPU.
    train: training steps per second, bf16 + channels_last (+ compile on GPU) against fp32,
    weighted against plain (256², batch 25 on GPU; 64², batch 4 on CPU); --arch adds
    DeepFill's steps (images/s counts the critics' batches) in the same run.
    data: the HDF5 training loader (uint8 items, free-form masks; and the float32 items of
    before) against raw random h5py reads, best of --rounds interleaved rounds.
    inpaint: wmi's classical inpainting against calling OpenCV / scikit-image directly.
    """
    from wmi.device import resolve_device

    dev = resolve_device(device)
    from wmi.kinds import CONV_KINDS
    from wmi.models.unet import check_training_size

    opts = Options(size, batch_size, layers, tuple(mode), rounds, tuple(arch), tuple(conv))
    names = list(SUITES) if suite is Suite.all else [suite.value]
    if "unet" in names:  # before anything runs: `all` would fail only after `layers`
        shape = _unet_shape(opts)
        norms = [CONV_KINDS[kind].paper_norm for kind in CONV_KINDS]
        check_training_size(shape["size"], shape["layers"], min(shape["batches"]), norms)
    console = make_console(stderr=as_json)
    if not console.is_terminal:  # a file or a pipe: rich would squeeze the tables into 80
        console = make_console(stderr=as_json, width=TABLE_WIDTH)
    results = {}
    for name in names:
        results[name] = _run_suite(name, dev, opts)
        if not as_json:
            render(name, results[name], console)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
