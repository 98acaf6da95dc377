"""wmi.training.config and wmi.training.step: config files, checks, resume policy, lr, AMP."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wmi.cli import app
from wmi.errors import WmiError
from wmi.kinds import CONV_KINDS, ConvKind
from wmi.training.config import (
    TrainConfig,
    auto_bn_momentum,
    bn_momentum_warning,
    check_size,
    first_fixed_difference,
    make_config,
    missing_options,
    resolve_bn_momentum,
    resolve_config,
    resume_config,
)
from wmi.training.state import Schedule
from wmi.training.step import lr_at


def test_config_file_gives_defaults_and_flags_override(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('conv = "partial"\nbatch-size = 8\nsize = 128\nlr = 1\n')
    cfg = make_config(toml, {"size": 64, "steps": 5, "layers": None})
    assert (cfg.conv, cfg.batch_size, cfg.size, cfg.steps, cfg.layers) == ("partial", 8, 64, 5, 7)
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    js = tmp_path / "run.json"
    js.write_text(json.dumps({"train": {"epochs": 3, "channels_last": True}}))
    cfg = make_config(js, {})
    assert cfg.epochs == 3 and cfg.channels_last is True

    (tmp_path / "bad.toml").write_text("sise = 64\n")
    with pytest.raises(WmiError, match="bad.toml: unknown option 'sise'"):
        make_config(tmp_path / "bad.toml", {})
    (tmp_path / "type.json").write_text('{"size": "big"}')
    with pytest.raises(WmiError, match="type.json: size: expected int"):
        make_config(tmp_path / "type.json", {})
    (tmp_path / "broken.toml").write_text("size = = 3\n")
    with pytest.raises(WmiError, match="broken.toml: not valid TOML"):
        make_config(tmp_path / "broken.toml", {})
    (tmp_path / "run.yaml").write_text("size: 3\n")
    with pytest.raises(WmiError, match="expected a .toml or .json file"):
        make_config(tmp_path / "run.yaml", {})


def test_cosine_schedule_runs_from_lr_to_lr_final() -> None:
    values = [lr_at(s, 11, 5e-4, 1e-5) for s in range(11)]
    assert values[0] == pytest.approx(5e-4) and values[-1] == pytest.approx(1e-5)
    assert values[5] == pytest.approx((5e-4 + 1e-5) / 2)
    assert all(a > b for a, b in itertools.pairwise(values))


def test_config_module_and_train_command_do_not_import_torch() -> None:
    code = (
        "import sys, wmi.training.config, wmi.kinds\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_replace_checks_names_and_types() -> None:
    cfg = TrainConfig().replace({"batch-size": 3, "lr": 1, "out": Path("x")})
    assert (cfg.batch_size, cfg.lr, cfg.out) == (3, 1.0, "x") and isinstance(cfg.lr, float)
    with pytest.raises(WmiError, match="option: unknown option 'batch'"):
        TrainConfig().replace({"batch": 3})
    with pytest.raises(WmiError, match="option: steps: expected int, got 1.5"):
        TrainConfig().replace({"steps": 1.5})
    with pytest.raises(WmiError, match="option: arch: must not be empty"):
        TrainConfig().replace({"arch": None})


def test_resolve_config_fills_in_every_auto() -> None:
    cfg = resolve_config(TrainConfig(conv="partial", steps=1), "cuda", bf16_supported=True)
    assert (cfg.norm, cfg.amp, cfg.device, cfg.lr, cfg.lr_final) == (
        "batch", "bf16", "cuda", 5e-4, 1e-5
    )  # fmt: skip
    cfg = resolve_config(TrainConfig(steps=1, finetune="x.pt"), "cuda", bf16_supported=False)
    assert (cfg.norm, cfg.amp, cfg.lr, cfg.lr_final) == ("weighted", "off", 5e-5, 5e-5)
    with pytest.raises(WmiError, match="--norm 'group': expected one of auto, weighted"):
        resolve_config(TrainConfig(steps=1, norm="group"), "cpu", False)


def test_a_registered_conv_kind_is_accepted_with_its_paper_norm() -> None:
    CONV_KINDS.register(ConvKind("mine", "a test kind", layer="wmi.layers.conv:PlainConv2d",
                                 paper_norm="instance"))  # fmt: skip
    try:
        assert resolve_config(TrainConfig(conv="mine", steps=1), "cpu", False).norm == "instance"
    finally:
        CONV_KINDS.unregister("mine")


def test_size_check_names_the_nearest_size() -> None:
    check_size(128, 7)
    with pytest.raises(WmiError, match=r"--size 100 is not a multiple of 2\*\*layers = 64 "):
        check_size(100, 6)
    with pytest.raises(WmiError, match="use --size 16"):
        check_size(8, 4)


def test_resume_policy_allows_only_how_a_run_runs_and_a_longer_run() -> None:
    saved = TrainConfig(steps=3).to_dict()
    assert first_fixed_difference(saved, {**saved, "workers": 0, "device": "cpu"}) is None
    assert first_fixed_difference(saved, {**saved, "steps": 4}) is None  # --steps raised
    assert first_fixed_difference(saved, {**saved, "steps": 2}) == ("steps", 3, 2)
    assert first_fixed_difference(saved, {**saved, "lr_final": 0.1}) == ("lr_final", None, 0.1)
    # a run given --epochs cannot switch to --steps
    by_epochs = TrainConfig(epochs=2).to_dict()
    assert first_fixed_difference(by_epochs, {**by_epochs, "epochs": 3}) is None
    assert first_fixed_difference(by_epochs, {**by_epochs, "steps": 9})[0] == "steps"


def test_resume_config_may_raise_steps_and_refuses_lowering(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"")  # resume_config reads config.json only
    (run / "config.json").write_text(json.dumps(TrainConfig(steps=10, lr=5e-4).to_dict()))
    assert resume_config(run, {"steps": 30}).steps == 30
    assert resume_config(run, {}).steps == 10
    with pytest.raises(
        WmiError, match="--resume may raise --steps, not lower it: it was 10, now 5"
    ):
        resume_config(run, {"steps": 5})
    with pytest.raises(WmiError, match="--resume continues the run as it was configured: --lr-"):
        resume_config(run, {"steps": 30, "lr_final": 1e-3})


def test_schedule_re_planned_when_a_run_grows() -> None:
    plan = Schedule.new(5e-4, 1e-5, 11)
    assert [plan.lr(s) for s in range(11)] == [lr_at(s, 11, 5e-4, 1e-5) for s in range(11)]
    # stopped after 4 steps, continued to 21: steps 0-3 as planned, then a cosine from the
    # rate step 4 would have had down to lr_final at the new last step
    grown = plan.extended(4, 21)
    assert grown.total == 21 and [grown.lr(s) for s in range(4)] == [plan.lr(s) for s in range(4)]
    assert grown.lr(4) == plan.lr(4)
    assert grown.lr(20) == pytest.approx(1e-5)
    tail = [grown.lr(s) for s in range(4, 21)]
    assert all(a > b for a, b in itertools.pairwise(tail))
    assert plan.extended(4, 11) is plan
    # a finished run continued: it stays at lr_final
    done = plan.extended(11, 15)
    assert [done.lr(s) for s in range(11, 15)] == pytest.approx([1e-5] * 4)
    # the checkpoint form, and the form of checkpoints written before re-planning existed
    assert Schedule.from_dict(grown.to_dict()) == grown
    old = {"kind": "cosine", "lr": 5e-4, "lr_final": 1e-5, "total_steps": 11}
    assert Schedule.from_dict(old) == plan


def test_steps_zero_is_an_error_like_negative_steps() -> None:
    for steps in (0, -3):
        with pytest.raises(WmiError, match=f"--steps must be at least 1, got {steps}"):
            resolve_config(TrainConfig(steps=steps), "cpu", False)
    with pytest.raises(WmiError, match="--epochs must be at least 1, got 0"):
        resolve_config(TrainConfig(epochs=0), "cpu", False)


def test_missing_options_are_reported_together() -> None:
    assert missing_options(TrainConfig()) == [
        "--data DIR", "--out RUN_DIR", "--steps N (or --epochs N)"
    ]  # fmt: skip
    assert missing_options(TrainConfig(data="d", out="o", epochs=1)) == []


def test_bn_momentum_follows_the_run_length_unless_given() -> None:
    assert auto_bn_momentum(40) == 0.1 and auto_bn_momentum(100) == pytest.approx(0.05)
    assert auto_bn_momentum(1000) == pytest.approx(0.005)
    assert auto_bn_momentum(5000) == auto_bn_momentum(500_000) == 0.001  # the paper's
    cfg = TrainConfig(steps=40)
    assert cfg.bn_momentum is None and resolve_bn_momentum(cfg, 40).bn_momentum == 0.1
    given = TrainConfig(steps=40, bn_momentum=0.001)
    assert resolve_bn_momentum(given, 40).bn_momentum == 0.001
    warning = bn_momentum_warning(given, 40)
    assert "--bn-momentum 0.001 is too small for a run of 40 steps" in warning
    assert "96%" in warning and "use --bn-momentum 0.1" in warning
    assert bn_momentum_warning(TrainConfig(bn_momentum=0.001), 300_000) is None
    assert bn_momentum_warning(TrainConfig(bn_momentum=0.1), 40) is None


def test_cli_help_shows_the_defaults_of_train_config() -> None:
    from wmi.cli.train import _shown
    from wmi.training.config import field_help, field_names

    # every field is described once, on the field, and --help prints that description
    assert all(field_help(name).strip() for name in field_names())
    help_text = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"}).output
    assert "Seeds weights, data order, crops and masks." in help_text
    assert _shown("size") == "256" and _shown("conv") == "weighted with --arch unet"
    assert _shown("compile") == "no-compile" and _shown("steps") is False
    # defaults an --arch decides are shown per arch, from its registry entry
    assert (
        _shown("lr")
        == "0.0005 (unet), 0.0001 (deepfill1), 0.0001 (deepfill2); 5e-05 with --finetune"
    )
    assert _shown("base_channels") == "64 (unet), 32 (deepfill1), 48 (deepfill2)"
    assert _shown("masks") == "freeform (unet), box (deepfill1), freeform (deepfill2)"
    assert _shown("bn_momentum") == "auto"
