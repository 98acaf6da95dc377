"""wmi.training.config and wmi.training.step: config files, checks, resume policy, lr, AMP."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from wmi.errors import WmiError
from wmi.kinds import CONV_KINDS, ConvKind
from wmi.train import lr_at, make_config
from wmi.training.config import TrainConfig, check_size, first_fixed_difference, resolve_config


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
    with pytest.raises(WmiError, match="option: conv: must not be empty"):
        TrainConfig().replace({"conv": None})


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
    CONV_KINDS.register(ConvKind("mine", "a test kind", layer="wmi.conv:PlainConv2d",
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


def test_resume_policy_allows_only_how_a_run_runs() -> None:
    saved = TrainConfig(steps=3).to_dict()
    assert first_fixed_difference(saved, {**saved, "workers": 0, "device": "cpu"}) is None
    assert first_fixed_difference(saved, {**saved, "steps": 4}) == ("steps", 3, 4)


def test_cli_help_shows_the_defaults_of_train_config() -> None:
    from wmi.cli.train import HELP, _shown
    from wmi.training.config import field_names

    assert set(HELP) == set(field_names())
    assert _shown("size") == "256" and _shown("conv") == "weighted"
    assert _shown("compile") == "no-compile" and _shown("steps") is False
    assert _shown("lr") == "0.0005; 5e-05 with --finetune"
