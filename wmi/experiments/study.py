"""``wmi study STUDY.toml --out DIR``: a Table I experiment, several seeds per method, resumable.

A study file (TOML, format in docs/study.md) names the training data, the test images and
their mask sets, the methods (each a ``wmi train`` configuration, or a classical method) and
the seeds. :func:`run_study` then

1. makes the data if the file asks for it (crops of photographs, ``wmi data prepare``) and one
   mask set per mask kind for the test images (``wmi masks generate --for``);
2. trains every (network, seed) run (:func:`wmi.training.loop.train`) into
   ``DIR/runs/<method>-seed<seed>``;
3. inpaints the test images with each run's best checkpoint and each classical method
   (:func:`wmi.inpaint.folder.inpaint_folder`) into ``DIR/results/<mask set>/<run>``;
4. scores every mask set (:func:`wmi.eval.scoring.score_folders`: mean over seeds ± 95%
   interval, paired comparisons with the first method) and writes ``report.md``,
   ``report.json`` and ``report.html`` (``report-<mask set>.html`` for the further sets).

It resumes where it stopped: a finished step leaves a marker and is skipped, a run killed
during training continues from its ``last.pt`` (the training's own resume). ``DIR/study.json``
holds the study as first run; a changed study file is refused unless ``overwrite``, which
starts the study over. Under ``torchrun`` every process trains each run together (the
training is data-parallel); only rank 0 prepares, inpaints and scores.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wmi.errors import WmiError
from wmi.progress import Notify, Progress

#: Marks a folder as a study's: only such a folder is replaced by ``overwrite``.
MARKER = ".wmi-study"
#: Marks a finished step (a run, a results folder).
DONE = ".study-done"
#: The prefix of a photograph shipped with scikit-image in ``photos`` lists.
SKIMAGE = "skimage:"
#: Training options every network of a study gets unless the study says otherwise: reports
#: of a study are files, so no TensorBoard; and no console output from the library.
_TRAIN_DEFAULTS = {"tensorboard": False}


@dataclass
class Method:
    """One column of the study: a network (``train`` options over the study's) or classical."""

    name: str
    classical: str = ""
    train: dict[str, Any] = field(default_factory=dict)


@dataclass
class Study:
    """A parsed study file (see docs/study.md); paths are resolved against its folder."""

    path: Path
    raw: dict[str, Any]
    seeds: list[int]
    methods: list[Method]
    mask_kinds: list[str]
    size: int

    @property
    def networks(self) -> list[Method]:
        return [m for m in self.methods if not m.classical]


def _table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise WmiError(f"{where}: [{key}] must be a table")
    return value


def load_study(path: str | os.PathLike[str]) -> Study:
    """Read and check a study file.

    Raises:
        WmiError: the file is missing or not TOML, or a key is unknown, missing or wrong; the
            message names the file and the key.
    """
    import tomllib

    from wmi.kinds import CLASSICAL_METHODS, MASK_KINDS
    from wmi.training.config import TrainConfig, check_config, field_names

    path = Path(path)
    if not path.is_file():
        raise WmiError(f"{path}: no such study file")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise WmiError(f"{path}: not valid TOML ({str(exc).splitlines()[0]})") from None
    unknown = set(raw) - {"name", "seeds", "data", "test", "train", "methods"}
    if unknown:
        raise WmiError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    seeds = raw.get("seeds", [0])
    if not (isinstance(seeds, list) and seeds and all(type(s) is int and s >= 0 for s in seeds)):
        raise WmiError(f"{path}: seeds must be a list of integers >= 0, got {seeds!r}")
    if len(set(seeds)) < len(seeds):
        raise WmiError(f"{path}: seeds repeat: {seeds}")
    data, test = _table(raw, "data", str(path)), _table(raw, "test", str(path))
    if ("shards" in data) == ("photos" in data):
        raise WmiError(f"{path}: [data] needs shards = DIR or photos = [...] (one of them)")
    if ("images" in test) == ("photos" in test):
        raise WmiError(f"{path}: [test] needs images = DIR or photos = [...] (one of them)")
    kinds = test.get("masks", ["freeform"])
    for kind in kinds:
        if kind not in MASK_KINDS:
            raise WmiError(f"{path}: [test] masks: unknown mask kind {kind!r}")
    shared = {**_TRAIN_DEFAULTS, **_table(raw, "train", str(path))}
    for key in ("data", "out", "seed", "resume"):
        if key in shared:
            raise WmiError(f"{path}: [train] {key} is set by the study; leave it out")
    TrainConfig.from_dict(shared, f"{path}: [train]")
    methods = []
    entries = raw.get("methods", [])
    if not isinstance(entries, list) or not entries:
        raise WmiError(f"{path}: no [[methods]]")
    for i, entry in enumerate(entries):
        where = f"{path}: methods[{i}]"
        name = entry.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise WmiError(f"{where}: needs name = \"...\" (no '/')")
        options = {k: v for k, v in entry.items() if k not in ("name", "classical")}
        if "classical" in entry:
            if entry["classical"] not in CLASSICAL_METHODS:
                raise WmiError(f"{where} ({name}): unknown classical method {entry['classical']!r}")
            if options:
                raise WmiError(
                    f"{where} ({name}): a classical method takes no {next(iter(options))!r}"
                )
            methods.append(Method(name, classical=entry["classical"]))
            continue
        if "arch" in options and "arch" not in field_names():
            raise WmiError(
                f"{where} ({name}): arch = {options['arch']!r} needs `wmi train --arch`, which "
                "this wmi does not have yet"
            )
        for key in ("data", "out", "seed", "resume"):
            if key in options:
                raise WmiError(f"{where} ({name}): {key} is set by the study; leave it out")
        try:
            check_config(TrainConfig.from_dict({**shared, **options}, f"{where} ({name})"))
        except WmiError as exc:  # name the study and the method, not a command-line flag
            text = str(exc)
            named = text if text.startswith(where) else f"{where} ({name}): {text}"
            raise WmiError(named) from None
        methods.append(Method(name, train={**shared, **options}))
    names = [m.name for m in methods]
    if len(set(names)) < len(names):
        raise WmiError(f"{path}: two methods share a name")
    size = TrainConfig.from_dict(shared).size
    if any(m.train.get("size", size) != size for m in methods if not m.classical):
        raise WmiError(f"{path}: every network must train at one size (the test images' size)")
    return Study(path, raw, list(seeds), methods, list(kinds), size)


# ---------------------------------------------------------------------------------- layout


def run_name(method: Method, seed: int) -> str:
    """A run's folder name: ``WConv-seed0``."""
    return f"{method.name}-seed{seed}"


def _resolve(study: Study, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else study.path.parent / path


def _claim(out: Path, study: Study, overwrite: bool) -> None:
    """Create ``out`` for ``study``; refuse another study's folder unless ``overwrite``."""
    from wmi.io import atomic_path

    record = out / "study.json"
    if out.exists() and not out.is_dir():
        raise WmiError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise WmiError(f"--out {out}: not empty and not a study's folder; refusing to use it")
        same = record.is_file() and json.loads(record.read_text(encoding="utf-8")) == study.raw
        if same and not overwrite:
            return
        if not overwrite:
            raise WmiError(
                f"{study.path}: differs from the study in {out} (study.json); use --overwrite to "
                "start it over, or another --out"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by wmi study; `wmi study --overwrite` may replace it\n")
    with atomic_path(record) as tmp:
        tmp.write_text(json.dumps(study.raw, indent=2) + "\n", encoding="utf-8")


def _done(folder: Path) -> bool:
    return (folder / DONE).is_file()


def _mark_done(folder: Path, info: Mapping[str, Any] | None = None) -> None:
    from wmi.io import atomic_path

    with atomic_path(folder / DONE) as tmp:
        tmp.write_text(json.dumps(dict(info or {})) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------ data


def _photo(name: str, where: str) -> Any:
    import numpy as np
    import skimage.data

    image = getattr(skimage.data, name, None) if not name.startswith("_") else None
    if image is None:
        raise WmiError(f"{where}: {SKIMAGE}{name} is not a scikit-image sample photograph")
    image = image()
    return image[..., :3] if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)


def _write_crops(folder: Path, photos: Sequence[str], crops: int, size: int, seed: int,
                 where: str, resize: bool) -> None:  # fmt: skip
    """Random square crops of 1.5x to 3x ``size`` of each ``skimage:NAME`` photograph
    (``resize``: scaled to ``size``, as test images are), from one stream seeded by ``seed``."""
    import numpy as np
    from PIL import Image

    from wmi.io import write_image

    rng = np.random.default_rng([seed, 23])
    for name in photos:
        if not name.startswith(SKIMAGE):
            raise WmiError(f"{where}: photos holds {SKIMAGE}NAME entries, got {name!r}")
        img = _photo(name[len(SKIMAGE) :], where)
        h, w = img.shape[:2]
        if min(h, w) < size:
            raise WmiError(f"{where}: {name} is {w}x{h}, smaller than the size {size}")
        for i in range(crops):
            side = int(rng.integers(min(int(1.5 * size), h, w), min(3 * size, h, w) + 1))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            crop = Image.fromarray(img[y : y + side, x : x + side])
            if resize:
                crop = crop.resize((size, size), Image.BICUBIC)
            write_image(folder / f"{name[len(SKIMAGE) :]}-{i:03d}.png", np.asarray(crop))


def _count(value: Any, where: str) -> int:
    if type(value) is not int or value < 1:
        raise WmiError(f"{where}: must be an integer >= 1, got {value!r}")
    return value


def _data(study: Study, out: Path) -> Path:
    """The shard folder: the study's, or made from photographs into ``out/data``."""
    from wmi.data import prepare

    data = study.raw["data"]
    if "shards" in data:
        shards = _resolve(study, data["shards"])
        if not shards.is_dir():
            raise WmiError(f"{study.path}: [data] shards {shards}: not a folder")
        return shards
    shards = out / "data" / "shards"
    if not _done(out / "data"):
        where = f"{study.path}: [data]"
        photos = out / "data" / "photos"
        shutil.rmtree(out / "data", ignore_errors=True)
        crops = _count(data.get("crops", 16), f"{where} crops")
        _write_crops(photos, data["photos"], crops, study.size, 0, where, resize=False)
        split = tuple(data.get("split", (0.85, 0.15, 0.0)))
        prepare(photos, shards, size=study.size, preset=data.get("preset", "plain"),
                split=split, seed=0, workers=0)  # fmt: skip
        _mark_done(out / "data")
    return shards


def _test_set(study: Study, out: Path) -> tuple[Path, dict[str, Path]]:
    """The test images and one mask folder per mask kind."""
    from wmi.masks import MaskSetSpec, image_targets, write_mask_set

    test = study.raw["test"]
    where = f"{study.path}: [test]"
    seed = test.get("seed", 0)
    if "images" in test:
        images = _resolve(study, test["images"])
        if not images.is_dir():
            raise WmiError(f"{where} images {images}: not a folder")
    else:
        images = out / "test" / "images"
        if not _done(out / "test"):
            shutil.rmtree(out / "test", ignore_errors=True)
            crops = _count(test.get("crops", 4), f"{where} crops")
            _write_crops(images, test["photos"], crops, study.size, seed + 1, where, resize=True)
            _mark_done(out / "test")
    masks = {}
    for kind in study.mask_kinds:
        folder = masks[kind] = out / "masks" / kind
        if not _done(folder):
            targets, _ = image_targets(images, folder)
            write_mask_set(folder, MaskSetSpec.for_images(kind, targets, seed), overwrite=True)
            _mark_done(folder)
    return images, masks


# ------------------------------------------------------------------------------- the work


@dataclass
class StudyResult:
    """What :func:`run_study` did.

    Attributes:
        out: the study folder; reports: the files written (empty on ranks other than 0).
        trained, skipped: runs trained (or resumed) now, and runs already finished.
        results: mask set -> the Table I results (with intervals and comparisons).
        seconds: wall time of this call.
    """

    out: Path
    reports: list[Path]
    trained: list[str]
    skipped: list[str]
    results: dict[str, Any]
    seconds: float


def _train_config(study: Study, method: Method, seed: int, shards: Path, out: Path) -> Any:
    from wmi.training.config import TrainConfig

    values = {
        **method.train,
        "data": str(shards),
        "out": str(out / "runs" / run_name(method, seed)),
    }
    return TrainConfig.from_dict({**values, "seed": seed}, f"{study.path}: {method.name}")


def _train(
    study: Study, method: Method, seed: int, shards: Path, out: Path, notify: Notify
) -> bool:
    """Train one run, resuming a killed one; False when it was interrupted (a signal)."""
    from wmi.training.loop import train

    cfg = _train_config(study, method, seed, shards, out)
    run_dir = Path(cfg.out)
    resume = (run_dir / "checkpoints" / "last.pt").is_file()
    if resume:
        notify("info", f"{run_name(method, seed)}: resuming the run from its last checkpoint")
    result = train(cfg, resume=resume, progress=False, echo=False)
    if result.status != "done":
        return False
    if result.rank == 0:
        _mark_done(run_dir, {"step": result.step, "best": result.best})
    return True


def _inpaint(study: Study, images: Path, masks: Mapping[str, Path], out: Path, device: str,
             step: Callable[[], None]) -> dict[str, dict[str, list[Path]]]:  # fmt: skip
    """Every run and classical method on every mask set: mask set -> method -> folders."""
    from wmi.inpaint.folder import inpaint_folder
    from wmi.inpaint.load import load_batch_inpainter

    preds: dict[str, dict[str, list[Path]]] = {}
    for kind, mask_dir in masks.items():
        preds[kind] = {}
        for method in study.methods:
            runs = (
                [(method.name, method.classical)]
                if method.classical
                else [
                    (run_name(method, s), str(out / "runs" / run_name(method, s)))
                    for s in study.seeds
                ]
            )
            preds[kind][method.name] = []
            for name, source in runs:
                folder = out / "results" / kind / name
                preds[kind][method.name].append(folder)
                if not _done(folder):
                    # a run folder loads its best checkpoint (load_batch_inpainter)
                    inpaint_folder(
                        images,
                        mask_dir,
                        folder,
                        lambda source=source: load_batch_inpainter(source, device),
                        overwrite=True,
                    )
                    _mark_done(folder)
                step()
    return preds


def _reports(
    study: Study,
    out: Path,
    images: Path,
    masks: Mapping[str, Path],
    preds: Mapping[str, Mapping[str, list[Path]]],
    seed: int,
) -> tuple[dict[str, Any], list[Path]]:
    """Score every mask set; write report.md, report.json and the HTML reports."""
    from wmi.eval import report
    from wmi.eval.html_report import write_eval_report
    from wmi.eval.scoring import score_folders
    from wmi.io import atomic_path

    results, htmls, sections = {}, [], []
    for i, (kind, mask_dir) in enumerate(masks.items()):
        scored = score_folders(images, mask_dir, preds[kind], seed=seed)
        results[kind] = report.to_dict(scored.results)
        html = out / ("report.html" if i == 0 else f"report-{kind}.html")
        write_eval_report(html, scored, title=f"{study.path.name}: {kind} masks", seed=seed)
        htmls.append(html)
        sections.append(f"## {kind} masks\n\n{report.to_markdown(scored.results)}")
    seeds = ", ".join(str(s) for s in study.seeds)
    title = study.raw.get("name", study.path.stem)
    head = f"# Study {title}\n\nSeeds {seeds}; study file {study.path.name}.\n\n"
    texts = {
        "report.md": head + "\n\n".join(sections),
        "report.json": json.dumps(results, indent=2, allow_nan=False) + "\n",
    }
    for name, text in texts.items():
        with atomic_path(out / name) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return results, [out / "report.md", out / "report.json", *htmls]


@dataclass
class _Group:
    """This process's place in a torchrun study: its rank, a barrier, and leaving."""

    rank: int = 0
    barrier: Callable[[], None] = lambda: None
    leave: Callable[[], None] = lambda: None


def _join(device: str) -> _Group:
    """Join torchrun's process group for the whole study (WORLD_SIZE > 1), so that every
    run's training finds it joined instead of joining and leaving once per run (a second
    join of the same group hangs)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _Group()
    import torch.distributed as tdist

    from wmi.training.run import setup_distributed

    dist = setup_distributed(device)

    def leave() -> None:
        if dist.owns_group and tdist.is_initialized():
            # the runs' DDP wrappers (and their reducers' threads) go before the group they use
            gc.collect()
            tdist.destroy_process_group()

    return _Group(dist.rank, tdist.barrier, leave)


def run_study(
    study_file: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    device: str = "auto",
    seed: int = 0,
    progress: Progress | None = None,
    notify: Notify | None = None,
) -> StudyResult:
    """Run (or resume) the study of ``study_file`` in ``out``; see the module docstring.

    Args:
        study_file: the TOML study file (docs/study.md).
        out: the study folder.
        overwrite: start over in a folder that holds a study with another study file.
        device: where networks inpaint the test images (training uses each method's
            ``device`` option).
        seed: the bootstrap's seed.
        progress: ``progress(done, total)`` over the study's steps (runs, inpainted folders,
            mask sets scored); notify: ``notify(level, message)``.

    Raises:
        WmiError: a bad study file or folder (nothing written), or a step fails; a run
            stopped by a signal raises too, with the run resumable.
    """
    start = time.perf_counter()
    study = load_study(study_file)
    out = Path(out)
    notify = notify or (lambda level, message: None)
    report_progress = progress or (lambda done, total: None)
    group = _join(device)
    try:
        return _run(study, out, overwrite, device, seed, group, report_progress, notify, start)
    finally:
        group.leave()


def _run(
    study: Study,
    out: Path,
    overwrite: bool,
    device: str,
    seed: int,
    group: _Group,
    report_progress: Progress,
    notify: Notify,
    start: float,
) -> StudyResult:
    """:func:`run_study` once the process group (if any) is joined."""
    rank = group.rank
    if rank == 0:
        _claim(out, study, overwrite)
    runs = [(m, s) for m in study.networks for s in study.seeds]
    total = len(runs) + len(study.mask_kinds) * (
        len(runs) + len(study.methods) - len(study.networks) + 1
    )
    done = 0
    if rank == 0:
        shards = _data(study, out)
        images, masks = _test_set(study, out)
    group.barrier()  # the other ranks train on the data rank 0 made
    if rank != 0:
        shards = _data(study, out)  # made: only finds the folder
    report_progress(done, total)
    trained, skipped = [], []
    pending = [(m, s) for m, s in runs if not _done(out / "runs" / run_name(m, s))]
    for method, s in runs:
        name = run_name(method, s)
        if (method, s) not in pending:
            skipped.append(name)
            notify("info", f"{name}: finished earlier, skipped")
        else:
            notify("info", f"training {name}")
            if not _train(study, method, s, shards, out, notify):
                raise WmiError(
                    f"{name}: training stopped by a signal; run the study again to resume it"
                )
            trained.append(name)
        done += 1
        report_progress(done, total)
    # Every rank leaves the group together once the last run is trained: a rank that exits
    # while another still holds its connections is aborted by gloo's threads (SIGABRT).
    group.barrier()
    group.leave()
    if rank != 0:
        return StudyResult(out, [], trained, skipped, {}, time.perf_counter() - start)
    notify("info", "inpainting the test images")

    def step() -> None:
        nonlocal done
        done += 1
        report_progress(done, total)

    preds = _inpaint(study, images, masks, out, device, step)
    notify("info", "scoring")
    results, written = _reports(study, out, images, masks, preds, seed)
    report_progress(total, total)
    return StudyResult(out, written, trained, skipped, results, time.perf_counter() - start)
