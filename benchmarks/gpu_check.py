"""The steps of ``benchmarks/gpu_check.sh``: a one-command check of wmi on a CUDA machine.

    bash benchmarks/gpu_check.sh            # on a GPU box, about 8 minutes
    bash benchmarks/gpu_check.sh --dry-run  # same steps, tiny sizes, on the CPU

Steps: the ``gpu``-marked tests; ``wmi bench unet`` and ``wmi bench train``; a short
``wmi train --amp bf16 --compile --channels-last`` on generated data, interrupted (SIGINT) in
the middle and resumed; ``wmi inpaint folder`` with the resulting checkpoint; ``wmi.models.export``
of that checkpoint. Every ``wmi`` command runs in its own process through ``_run`` below,
which records its exit code, wall time and peak memory. Prints one JSON summary on stdout
(progress on stderr) and exits 1 when any step failed.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve()

#: Sizes of the full check (GPU) and of the dry run (CPU).
PLANS = {
    "gpu": {
        "device": "cuda",
        "unet_size": 256,
        "unet_batch": 8,
        "rounds": 5,
        "images": 400,
        "image_size": 256,
        "layers": 7,
        "base_channels": 64,
        "batch_size": 25,
        "bench_train_size": 256,
        "steps": 300,
        "interrupt_after": 150,
        "workers": 4,
        "modes": ("fp32", "bf16+cl", "bf16+cl+compile"),
        "compile": True,
        "timeout": 420,
    },
    "dry": {
        "device": "cpu",
        "unet_size": 16,
        "unet_batch": 2,
        "rounds": 1,
        "images": 24,
        "image_size": 32,
        "layers": 3,
        "base_channels": 4,
        "batch_size": 2,
        "bench_train_size": 16,
        "steps": 60,  # enough that SIGINT lands mid-run even on a fast idle CPU
        "interrupt_after": 3,
        "workers": 2,  # the uint8 loader with workers, as on the GPU box
        # inductor on a loaded 2-core CPU takes minutes: compile only with --compile
        "modes": ("fp32", "bf16+cl"),
        "compile": False,
        "timeout": 240,
    },
}


def log(message: str) -> None:
    print(f"[gpu_check] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ one wmi command, measured


def _run(result_path: str, argv: list[str]) -> None:
    """Run ``wmi ARGV`` in this process; write exit code, seconds and peak memory as JSON."""
    import resource

    start = time.perf_counter()
    code: Any = 0
    sys.argv = ["wmi", *argv]
    interrupted = False
    try:
        from wmi.cli import main

        main()
    except SystemExit as exc:
        code = exc.code if exc.code is not None else 0
    except KeyboardInterrupt:
        code, interrupted = 130, True
    finally:
        record: dict[str, Any] = {
            "rc": code if isinstance(code, int) else 1,
            "seconds": time.perf_counter() - start,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "interrupted": interrupted,
        }
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            record["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
        Path(result_path).write_text(json.dumps(record))
    sys.exit(code)


def wmi(
    name: str,
    args: list[str],
    work: Path,
    timeout: float,
    interrupt_when: Any = None,
) -> dict[str, Any]:
    """Run one ``wmi`` command in a fresh process; its stdout is returned, stderr kept in a log.

    ``interrupt_when``: a callable polled every 50 ms; when it returns true the command gets
    SIGINT (Ctrl-C), as a scheduler preempting a run would send.
    """
    record_path = work / f"{name}.result.json"
    log_path = work / f"{name}.stderr.log"
    cmd = [sys.executable, str(HERE), "_run", str(record_path), *args]
    log(f"{name}: wmi {' '.join(args)}")
    start = time.perf_counter()
    interrupted = False
    with open(log_path, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
        if interrupt_when is not None:
            while proc.poll() is None and time.perf_counter() - start < timeout:
                if not interrupted and interrupt_when():
                    proc.send_signal(signal.SIGINT)
                    interrupted = True
                time.sleep(0.05)
        try:
            stdout, _ = proc.communicate(timeout=max(1.0, timeout - (time.perf_counter() - start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, _ = proc.communicate()
            return {"ok": False, "rc": None, "error": f"timed out after {timeout:.0f} s"}
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    record.setdefault("rc", proc.returncode)
    record["wall_s"] = round(time.perf_counter() - start, 2)
    record["stdout"] = stdout
    record["sent_sigint"] = interrupted
    if record["rc"] not in (0, 130 if interrupted else 0):
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        record["error"] = " | ".join(tail)
    record["ok"] = record["rc"] == 0 or (interrupted and record["rc"] == 130)
    return record


def _json_stdout(record: dict[str, Any]) -> Any:
    text = record.pop("stdout", "") or ""
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except json.JSONDecodeError:
        return None


def _mem(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("ok", "rc", "wall_s", "peak_cuda_mb", "peak_rss_mb", "error", "sent_sigint")
    out = {k: record[k] for k in keys if k in record}
    for k in ("peak_cuda_mb", "peak_rss_mb"):
        if k in out:
            out[k] = round(out[k], 1)
    return out


# --------------------------------------------------------------------------------- the steps


def environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env.update(
            card=torch.cuda.get_device_name(0),
            memory_gb=round(props.total_memory / 2**30, 1),
            capability=f"{props.major}.{props.minor}",
            cudnn=torch.backends.cudnn.version(),
            bf16=torch.cuda.is_bf16_supported(),
        )
    else:
        env["card"] = None if device == "cuda" else "CPU (dry run)"
    return env


#: Said, and recorded in the summary, when this Python has no pytest (a plain install).
NO_PYTEST = (
    "skipped: pytest is not installed, so the gpu-marked tests did not run "
    "(pip install pytest, or pip install -e '.[test]' in the checkout)"
)


def gpu_tests(work: Path, dry: bool) -> dict[str, Any]:
    if importlib.util.find_spec("pytest") is None:
        log(f"gpu tests {NO_PYTEST}")
        return {"ok": True, "ran": False, "note": NO_PYTEST}
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"]
    log("gpu tests: " + " ".join(cmd[1:]))
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    (work / "gpu_tests.log").write_text(proc.stdout + proc.stderr)
    counts = {
        word: int(n)
        for n, word in re.findall(r"(\d+) (passed|failed|skipped|deselected|error)", proc.stdout)
    }
    # 5 = no test collected: no gpu-marked test exists (yet); not a failure of the machine
    ok = proc.returncode == 0 or (proc.returncode == 5 and not counts.get("failed"))
    if not dry and counts.get("skipped"):
        ok = False  # on the GPU box a skipped gpu test means CUDA was not seen
    out = {"ok": ok, "rc": proc.returncode, "wall_s": round(time.perf_counter() - start, 2)}
    out.update(counts)
    if not ok:
        out["error"] = " | ".join(proc.stdout.strip().splitlines()[-3:])
    return out


def bench_unet(work: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """``wmi bench unet`` in each precision mode of the plan, as ratios to the plain U-Net."""
    args = ["bench", "unet", "--device", plan["device"], "--json"]
    args += ["--size", str(plan["unet_size"]), "--rounds", str(plan["rounds"])]
    # one batch size: every conv kind, pass and batch shape is a compile of its own
    args += ["--layers", str(plan["layers"]), "--batch-size", str(plan["unet_batch"])]
    for mode in plan["modes"]:
        args += ["--mode", mode]
    record = wmi("bench-unet", args, work, plan["timeout"])
    rows = ((_json_stdout(record) or {}).get("unet") or {}).get("rows", [])
    out = _mem(record)

    def key(r: dict[str, Any]) -> str:
        return f"{r['mode']} {r['kind']} {r['pass']} b{r['batch']}"

    out["ms"] = {key(r): round(r["ms"], 3) for r in rows}
    out["ratio_vs_plain"] = {key(r): round(r["ratio_vs_plain"], 3) for r in rows}
    if record.get("ok") and not rows:
        out.update(ok=False, error="no rows in the JSON of wmi bench unet")
    return out


def bench_train(work: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """``wmi bench train``: full training steps (random VGG16 terms) per conv kind and mode."""
    args = ["bench", "train", "--device", plan["device"], "--json"]
    args += ["--rounds", str(plan["rounds"]), "--size", str(plan["bench_train_size"])]
    args += ["--batch-size", str(plan["batch_size"]), "--layers", str(plan["layers"])]
    for mode in plan["modes"]:
        args += ["--mode", mode]
    record = wmi("bench-train", args, work, plan["timeout"])
    result = (_json_stdout(record) or {}).get("train") or {}
    rows = result.get("rows", [])
    out = _mem(record)
    out["shape"] = {k: result.get(k) for k in ("size", "batch_size", "layers", "perceptual")}
    out["images_per_s"] = {f"{r['conv']} {r['mode']}": round(r["images_per_s"], 2) for r in rows}
    for ratio in ("speedup_vs_fp32", "ratio_vs_plain"):
        out[ratio] = {
            f"{r['conv']} {r['mode']}": round(r[ratio], 3) for r in rows if r.get(ratio) is not None
        }
    if record.get("ok") and not rows:
        out.update(ok=False, error="no rows in the JSON of wmi bench train")
    return out


def make_vgg_weights(path: Path) -> None:
    """Randomly initialised VGG16 weights, the layers wmi reads (features.0 … features.14).

    Same speed as the real file; nothing is downloaded.
    """
    import torch

    from wmi.training.losses import VGG16Features

    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    torch.save(state, path)


def make_images(folder: Path, count: int, size: int, seed: int = 0) -> None:
    """Smooth random colour fields with some structure: images a U-Net can learn a little of."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        f = rng.uniform(1, 6, 3)
        p = rng.uniform(0, 2 * np.pi, 3)
        img = np.stack(
            [0.5 + 0.5 * np.sin(2 * np.pi * f[c] * (xx + yy * (c - 1)) + p[c]) for c in range(3)],
            axis=-1,
        )
        img += rng.normal(0, 0.03, img.shape)
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(folder / f"{i:04d}.png")


def make_masks(folder: Path, count: int, size: int, seed: int = 1) -> None:
    """White boxes (holes) on black, one per image of :func:`make_images`."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        mask = np.zeros((size, size), np.uint8)
        h, w = rng.integers(size // 6, size // 2, 2)
        y, x = rng.integers(0, size - h), rng.integers(0, size - w)
        mask[y : y + h, x : x + w] = 255
        Image.fromarray(mask).save(folder / f"{i:04d}.png")


def train_run(work: Path, plan: dict[str, Any], vgg: Path, shards: Path) -> dict[str, Any]:
    """``wmi train`` interrupted with SIGINT after ``interrupt_after`` steps, then resumed."""
    run = work / "run"
    args = ["train", "--data", str(shards), "--out", str(run), "--device", plan["device"]]
    args += ["--amp", "bf16", "--channels-last"]
    args += ["--compile"] if plan["compile"] else ["--no-compile"]
    args += ["--size", str(plan["image_size"]), "--layers", str(plan["layers"])]
    args += ["--base-channels", str(plan["base_channels"])]
    args += ["--batch-size", str(plan["batch_size"]), "--steps", str(plan["steps"])]
    args += ["--bn-momentum", "0.1", "--workers", str(plan["workers"])]
    half = plan["interrupt_after"]
    # SIGINT saves last.pt wherever the run is; one validation, at the end
    args += ["--save-every", str(half), "--val-every", str(plan["steps"]), "--val-images", "8"]
    args += ["--log-every", "1", "--vgg-weights", str(vgg), "--no-progress", "--seed", "0"]
    metrics = run / "metrics.jsonl"

    def reached_half() -> bool:
        return _last_step(metrics) >= half

    first = wmi("train", args, work, plan["timeout"], interrupt_when=reached_half)
    stopped_at = _last_step(metrics)
    out: dict[str, Any] = {"first": _mem(first), "stopped_at_step": stopped_at}
    if not first["ok"]:
        return {**out, "ok": False, "error": first.get("error")}
    resumed = wmi("train-resume", [*args, "--resume"], work, plan["timeout"])
    out["resume"] = _mem(resumed)
    lines = _metrics(metrics)
    train_lines = [r for r in lines if r.get("kind") == "train"]
    val_lines = [r for r in lines if r.get("kind") == "val"]
    final = train_lines[-1]["step"] if train_lines else None
    # images/s of the resumed part, without its first steps (compile, loader start-up)
    speeds = [r["images_per_s"] for r in train_lines if r["step"] > stopped_at + 3]
    speeds = speeds or [r["images_per_s"] for r in train_lines[-3:]]
    out.update(
        ok=bool(resumed["ok"] and final == plan["steps"] and first["rc"] == 130),
        final_step=final,
        resumed=first["sent_sigint"] and first["rc"] == 130,
        images_per_s=round(sorted(speeds)[len(speeds) // 2], 2) if speeds else None,
        loss_first=train_lines[0]["total"] if train_lines else None,
        loss_last=train_lines[-1]["total"] if train_lines else None,
        last_validation=val_lines[-1] if val_lines else None,
        checkpoint=str(run / "checkpoints" / "last.pt"),
    )
    if not out["ok"] and "error" not in out:
        out["error"] = resumed.get("error") or (
            f"final step {final} (expected {plan['steps']}), SIGINT sent: {first['sent_sigint']}"
        )
    return out


def _metrics(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    lines = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line being written
            lines.append(json.loads(line))
    return lines


def _last_step(path: Path) -> int:
    steps = [r.get("step", 0) for r in _metrics(path) if r.get("kind") == "train"]
    return max(steps, default=0)


def inpaint(work: Path, plan: dict[str, Any], checkpoint: str) -> dict[str, Any]:
    count = 16 if plan["device"] == "cpu" else 64
    images, masks, results = work / "inpaint" / "images", work / "inpaint" / "masks", work / "out"
    make_images(images, count, plan["image_size"], seed=7)
    make_masks(masks, count, plan["image_size"])
    args = ["inpaint", "folder", str(images), str(masks), str(results)]
    args += ["--checkpoint", checkpoint, "--device", plan["device"], "--json"]
    args += ["--batch-size", str(min(count, plan["batch_size"] * 2))]
    record = wmi("inpaint", args, work, plan["timeout"])
    summary = _json_stdout(record) or {}
    out = _mem(record)
    written = len(list(results.glob("*.png"))) if results.is_dir() else 0
    out["images"] = written
    if out.get("wall_s"):
        out["images_per_s_with_startup"] = round(written / out["wall_s"], 2)
    for key in ("images_per_s", "seconds", "done", "failed", "skipped"):
        if key in summary:
            out[key] = summary[key]
    if written != count:
        out.update(ok=False, error=out.get("error") or f"{written} of {count} results written")
    return out


def export(work: Path, checkpoint: str, onnx: bool) -> dict[str, Any]:
    """``wmi.models.export`` of the trained checkpoint: reload it, compare with the checkpoint."""
    import torch

    if importlib.util.find_spec("safetensors") is None:
        return {"ok": None, "skipped": "safetensors not installed"}
    from wmi.models.checkpoint import build_model, load_checkpoint
    from wmi.models.export import check_onnx, export_model, load_exported

    packages = ("onnx", "onnxscript", "onnxruntime")
    want_onnx = onnx and all(importlib.util.find_spec(m) for m in packages)
    start = time.perf_counter()
    try:
        result = export_model(checkpoint, work / "export", onnx=want_onnx)
        model, _ = load_exported(result.out_dir)
        ref = build_model(load_checkpoint(checkpoint)).eval()
        size = 2 * model.multiple
        x, m = torch.rand(2, 3, size, size), (torch.rand(2, 1, size, size) > 0.3).float()
        with torch.no_grad():
            identical = torch.equal(model(x, m), ref(x, m))
        out: dict[str, Any] = {"ok": identical, "identical_to_checkpoint": identical}
        if result.onnx is not None:
            diff = check_onnx(model, result.onnx, shapes=((1, 2, 2), (2, 3, 2)))
            out.update(onnx_max_abs_diff=diff, ok=identical and diff < 1e-4)
    except Exception as exc:
        return {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    out["wall_s"] = round(time.perf_counter() - start, 2)
    return out


# ---------------------------------------------------------------------------------- the check


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "_run":
        _run(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="dry run: compile too (bench and train; minutes on a CPU)",
    )
    parser.add_argument("--keep", type=Path, help="work in this new folder and keep it")
    opts = parser.parse_args()
    plan = dict(PLANS["dry" if opts.dry_run else "gpu"])
    if opts.compile and not plan["compile"]:
        plan.update(compile=True, modes=(*plan["modes"], "bf16+cl+compile"))
    started = time.perf_counter()

    import torch

    summary: dict[str, Any] = {"dry_run": opts.dry_run, **environment(plan["device"])}
    if not opts.dry_run and not torch.cuda.is_available():
        summary.update(ok=False, error="no CUDA device (use --dry-run for the CPU check)")
        print(json.dumps(summary, indent=2))
        return 1
    if opts.keep:
        if opts.keep.is_dir() and any(opts.keep.iterdir()):
            parser.error(f"--keep {opts.keep}: must be a new or empty folder")
        opts.keep.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.TemporaryDirectory(prefix="wmi-gpu-check-") if not opts.keep else None
    work = opts.keep or Path(tmp.name)  # type: ignore[union-attr]
    steps: dict[str, Any] = {}
    try:
        steps["gpu_tests"] = gpu_tests(work, opts.dry_run)
        steps["bench_unet"] = bench_unet(work, plan)
        steps["bench_train"] = bench_train(work, plan)
        vgg = work / "vgg16-random.pth"
        make_vgg_weights(vgg)

        log("data: generated images -> wmi data prepare")
        make_images(work / "src", plan["images"], plan["image_size"])
        shards = work / "shards"
        prep_args = ["data", "prepare", str(work / "src"), str(shards)]
        prep_args += ["--size", str(plan["image_size"]), "--split", "0.8,0.2,0"]
        prep_args += ["--workers", "0" if opts.dry_run else "8"]
        steps["data_prepare"] = _mem(wmi("data-prepare", prep_args, work, plan["timeout"]))
        steps["train"] = train_run(work, plan, vgg, shards)
        ckpt = steps["train"].get("checkpoint")
        if ckpt and Path(ckpt).is_file():
            steps["inpaint"] = inpaint(work, plan, ckpt)
            # the dry run leaves ONNX to tests/models/test_export.py (half a minute on 2 cores)
            steps["export"] = export(work, ckpt, onnx=not opts.dry_run)
        else:
            steps["inpaint"] = {"ok": False, "error": "no checkpoint from the training step"}
    except Exception as exc:  # a bug of this script: still print a summary
        steps["check"] = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}"}
    finally:
        if tmp is not None:
            tmp.cleanup()

    def failed(step: Any) -> bool:
        if not isinstance(step, dict):
            return False
        if step.get("ok") is False:
            return True
        return any(failed(v) for v in step.values() if isinstance(v, dict))

    summary["ok"] = not any(failed(s) for s in steps.values())
    summary["failed"] = [name for name, s in steps.items() if failed(s)]
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["steps"] = steps
    print(json.dumps(summary, indent=2, default=str))
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
