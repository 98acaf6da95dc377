"""LPIPS and FID equal their reference implementations; weights are files.

Nothing is downloaded: each network gets random weights, saved under torchvision's and
pytorch-fid's standard file names in a temporary torch hub cache; the reference packages
(``lpips``, ``pytorch-fid``) find them there exactly as they would find downloaded weights,
and :mod:`wmi.eval.perceptual` reads the same files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wmi import weights as wmi_weights
from wmi.errors import WmiError
from wmi.eval import perceptual
from wmi.weights import (
    ALEXNET_FILE,
    FID_INCEPTION_FILE,
    VGG16_FILE,
    find_weights,
    missing_weights_message,
)

lpips = pytest.importorskip("lpips")
fid_inception = pytest.importorskip("pytorch_fid.inception")
fid_score = pytest.importorskip("pytorch_fid.fid_score")


# --------------------------------------------------------------------------------------------
# Random weights in a temporary hub cache


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TORCH_HOME whose ``hub/checkpoints`` holds random alexnet, vgg16 and FID Inception."""
    home = tmp_path_factory.mktemp("torch_home")
    checkpoints = home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), checkpoints / ALEXNET_FILE)
    vgg = torchvision.models.vgg16(weights=None).state_dict()
    # The classifier (120M parameters) is needed for torchvision's strict load but unused by
    # LPIPS: stride-0 views of one number keep the file small.
    for key, value in vgg.items():
        if key.startswith("classifier."):
            vgg[key] = torch.zeros(1).expand(value.shape)
    torch.save(vgg, checkpoints / VGG16_FILE)
    torch.save(_random_fid_inception_state(), checkpoints / FID_INCEPTION_FILE)
    return home


def _random_fid_inception_state() -> dict[str, torch.Tensor]:
    """pytorch-fid's FID Inception (built as its ``fid_inception_v3``), random weights, with
    batch-norm statistics calibrated on random images so that the features are not degenerate."""
    fi = fid_inception
    net = fi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = fi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = fi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = fi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = fi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = fi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = fi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = fi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = fi.FIDInceptionE_1(1280)
    net.Mixed_7c = fi.FIDInceptionE_2(2048)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration batch
    net.train()
    with torch.no_grad():
        net(torch.rand(2, 3, 299, 299) * 2 - 1)
    return net.state_dict()


@pytest.fixture
def hub(torch_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point torch's hub cache at ``torch_home``; returns its ``checkpoints`` folder."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return torch_home / "hub" / "checkpoints"


def _images(n: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs (prediction composite, ground truth) of float32 ``(size, size, 3)`` images,
    values k/255 (as if read from 8-bit files)."""
    rng = np.random.default_rng(seed)
    base = rng.random((n, size // 8, size // 8, 3))
    gt = np.kron(base, np.ones((1, 8, 8, 1))) * 0.7 + 0.3 * rng.random((n, size, size, 3))
    comp = gt.copy()
    hole = slice(size // 4, size // 2)
    comp[:, hole, hole] = rng.random((n, size // 4, size // 4, 3))
    to8 = lambda x: np.round(x * 255).astype(np.uint8)  # noqa: E731
    return to8(comp), to8(gt)


def _float(images8: np.ndarray) -> np.ndarray:
    return images8.astype(np.float32) / np.float32(255)


def _nchw(images8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(_float(images8)).permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------------------------
# Weights lookup


def test_find_weights_uses_the_given_folder_else_the_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    cache = home / "hub" / "checkpoints"
    assert wmi_weights.hub_checkpoints_dir() == cache
    assert find_weights(ALEXNET_FILE) is None
    cache.mkdir(parents=True)
    (cache / ALEXNET_FILE).write_bytes(b"x")
    assert find_weights(ALEXNET_FILE) == cache / ALEXNET_FILE
    # An explicit folder is the only place looked in, even when the cache has the file.
    mine = tmp_path / "mine"
    mine.mkdir()
    assert find_weights(ALEXNET_FILE, mine) is None
    (mine / ALEXNET_FILE).write_bytes(b"x")
    assert find_weights(ALEXNET_FILE, mine) == mine / ALEXNET_FILE
    assert find_weights(VGG16_FILE, mine) is None
    # torch.hub.set_dir moves the cache too.
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "elsewhere"))
    assert wmi_weights.hub_checkpoints_dir() == tmp_path / "elsewhere" / "checkpoints"


def test_weights_table_names_the_standard_files() -> None:
    assert set(wmi_weights.WEIGHTS) == {ALEXNET_FILE, VGG16_FILE, FID_INCEPTION_FILE}
    for filename, entry in wmi_weights.WEIGHTS.items():
        assert entry.filename == filename
        assert entry.url.endswith("/" + filename)
    import torchvision

    assert (
        wmi_weights.WEIGHTS[ALEXNET_FILE].url
        == torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url
    )
    assert wmi_weights.WEIGHTS[VGG16_FILE].url == torchvision.models.VGG16_Weights.IMAGENET1K_V1.url
    assert wmi_weights.WEIGHTS[FID_INCEPTION_FILE].url == fid_inception.FID_WEIGHTS_URL


def test_weights_module_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, wmi.weights; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert out.stdout.strip() == "False"


def test_missing_weights_message_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    assert missing_weights_message(ALEXNET_FILE) == (
        f"LPIPS (alex) left out: put {ALEXNET_FILE} in {tmp_path / 'hub' / 'checkpoints'} "
        "(or pass --weights-dir)"
    )
    assert missing_weights_message(FID_INCEPTION_FILE, tmp_path / "w") == (
        f"FID left out: put {FID_INCEPTION_FILE} in {tmp_path / 'w'}"
    )


def test_availability_reports_missing_weights_without_raising(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ALEXNET_FILE).write_bytes(b"x")
    available, notices = perceptual.perceptual_availability(
        ["lpips-alex", "lpips-vgg", "fid"], weights_dir=tmp_path
    )
    assert available == {"lpips-alex": tmp_path / ALEXNET_FILE}
    assert notices == [
        f"LPIPS (vgg) left out: put {VGG16_FILE} in {tmp_path}",
        f"FID left out: put {FID_INCEPTION_FILE} in {tmp_path}",
    ]
    nets, notices = perceptual.PerceptualNets.load(
        lpips_net="vgg", fid=True, weights_dir=tmp_path / "empty"
    )
    assert nets.metrics == ()
    assert len(notices) == 2 and all("\n" not in line for line in notices)
    assert capsys.readouterr().out == ""


def test_a_file_that_is_not_the_network_is_a_one_line_error(tmp_path: Path) -> None:
    torch.save({"features.0.weight": torch.zeros(3)}, tmp_path / ALEXNET_FILE)
    with pytest.raises(WmiError, match="not a torchvision alexnet state dict"):
        perceptual.load_lpips("alex", tmp_path / ALEXNET_FILE)
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / FID_INCEPTION_FILE)
    with pytest.raises(WmiError, match="not pytorch-fid's FID Inception state dict"):
        perceptual.load_fid_inception(tmp_path / FID_INCEPTION_FILE)
    (tmp_path / VGG16_FILE).write_bytes(b"not a pickle")
    with pytest.raises(WmiError, match="not a readable weights file"):
        perceptual.load_lpips("vgg", tmp_path / VGG16_FILE)


# --------------------------------------------------------------------------------------------
# LPIPS


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_equals_the_lpips_package(net: str, hub: Path) -> None:
    comp, gt = _images(5)
    # The reference: the lpips package loading torchvision's ImageNet weights from the cache.
    reference_model = lpips.LPIPS(net=net, version="0.1", verbose=False)
    with torch.no_grad():
        reference = reference_model(_nchw(comp), _nchw(gt), normalize=True).reshape(-1).numpy()

    nets, notices = perceptual.PerceptualNets.load(lpips_net=net, fid=False, batch_size=2)
    assert notices == [] and nets.metrics == ("lpips",)
    ours_numpy = nets.lpips(_float(comp), _float(gt))  # (N, H, W, 3), in batches of 2
    ours_tensor = perceptual.lpips_distances(nets.lpips_model, _nchw(comp), _nchw(gt))
    assert ours_numpy.shape == (5,) and ours_numpy.dtype == np.float64
    assert reference.min() > 0
    np.testing.assert_allclose(ours_numpy, reference, rtol=1e-5, atol=0)
    np.testing.assert_allclose(ours_tensor, reference, rtol=1e-5, atol=0)
    # Identical images are at distance 0.
    assert perceptual.lpips_distances(nets.lpips_model, _float(gt), _float(gt)).max() == 0


def test_lpips_many_runs_the_backbone_on_each_ground_truth_once(hub: Path) -> None:
    """Several methods against one ground truth: the same distances as one call per method,
    with 1 + M backbone passes per batch instead of 2 M."""
    comp_a, gt = _images(5)
    comp_b, _ = _images(5, seed=1)
    nets, _ = perceptual.PerceptualNets.load(lpips_net="alex", fid=False, batch_size=2)
    want = {m: nets.lpips(_float(c), _float(gt)) for m, c in (("a", comp_a), ("b", comp_b))}
    calls = []
    forward = nets.lpips_model.net.forward
    nets.lpips_model.net.forward = lambda x: calls.append(len(x)) or forward(x)
    got = nets.lpips_many({"a": _float(comp_a), "b": _float(comp_b)}, _float(gt))
    for m in want:
        np.testing.assert_allclose(got[m], want[m], rtol=1e-6, atol=1e-9)
    assert len(calls) == 3 * 3  # 3 batches (2, 2, 1 images) x (ground truth + 2 methods)


def test_ground_truth_fid_features_are_cached_by_content_and_weights(tmp_path: Path) -> None:
    """Each distinct ground-truth file goes through the network once; a later evaluation with
    the same weights reads them from the cache folder; other bytes or weights miss."""
    from PIL import Image

    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights one")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    paths = [tmp_path / "0.png", tmp_path / "1.png"]
    for path, image in zip(paths, images, strict=True):
        Image.fromarray(image).save(path)
    floats = _float(images)
    computed: list[int] = []

    def fake_features(batch: np.ndarray) -> np.ndarray:  # stands in for the Inception
        computed.append(len(batch))
        return np.repeat(batch.mean(axis=(1, 2, 3))[:, None], perceptual.FID_DIMS, axis=1)

    def nets(weights_file: Path) -> perceptual.PerceptualNets:
        out = perceptual.PerceptualNets(
            inception=torch.nn.Identity(), fid_weights=weights_file, cache_dir=tmp_path / "cache"
        )
        out.fid_features = fake_features  # type: ignore[method-assign]
        return out

    first = nets(weights)
    # LaMa's layout: one ground truth per mask, so the same file comes twice
    rows = first.gt_fid_features([paths[0], paths[1], paths[0]], floats[[0, 1, 0]])
    assert computed == [2] and rows.shape == (3, perceptual.FID_DIMS)
    np.testing.assert_array_equal(rows[0], rows[2])
    first.gt_fid_features(paths, floats)
    assert computed == [2]  # in memory
    later = nets(weights)
    np.testing.assert_array_equal(later.gt_fid_features(paths, floats), rows[:2])
    assert computed == [2] and later.gt_cache is not None and later.gt_cache.hits == 2
    weights.write_bytes(b"weights two")
    nets(weights).gt_fid_features(paths, floats)
    assert computed == [2, 2]  # other weights: other entries
    Image.fromarray(255 - images[1]).save(paths[1])
    nets(weights).gt_fid_features(paths, floats)
    assert computed == [2, 2, 1]  # only the changed file


def test_lpips_reads_the_weights_dir_not_the_cache(hub: Path, tmp_path: Path) -> None:
    other = torch.load(hub / ALEXNET_FILE, weights_only=True)
    other = {key: value * 0.5 for key, value in other.items()}
    torch.save(other, tmp_path / ALEXNET_FILE)
    comp, gt = _images(2)
    from_cache = perceptual.load_lpips("alex", hub / ALEXNET_FILE)
    nets, _ = perceptual.PerceptualNets.load(lpips_net="alex", fid=False, weights_dir=tmp_path)
    a = perceptual.lpips_distances(from_cache, _float(comp), _float(gt))
    b = nets.lpips(_float(comp), _float(gt))
    assert not np.allclose(a, b)


# --------------------------------------------------------------------------------------------
# FID


@pytest.fixture(scope="module")
def fid_case(torch_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """Features of 4 composites and 4 ground truths, ours and pytorch-fid's (from PNG files)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TORCH_HOME", str(torch_home))
    mp.setattr(torch.hub, "_hub_dir", None)
    try:
        folder = tmp_path_factory.mktemp("fid_images")
        comp, gt = _images(4, size=48, seed=1)
        files: dict[str, list[str]] = {"comp": [], "gt": []}
        for name, images in (("comp", comp), ("gt", gt)):
            for i, image in enumerate(images):
                path = folder / f"{name}{i}.png"
                Image.fromarray(image).save(path)
                files[name].append(str(path))
        reference_model = fid_inception.InceptionV3([3])  # finds the file in the hub cache
        nets, notices = perceptual.PerceptualNets.load(lpips_net=None, fid=True, batch_size=4)
        assert notices == [] and nets.metrics == ("fid",)
        case = {}
        for name, images in (("comp", comp), ("gt", gt)):
            case[f"ref_{name}"] = fid_score.get_activations(
                files[name], reference_model, batch_size=4, dims=2048, device="cpu", num_workers=0
            )
            case[name] = nets.fid_features(_float(images))
        return case
    finally:
        mp.undo()


def test_fid_features_equal_pytorch_fid(fid_case: dict[str, np.ndarray]) -> None:
    for name in ("comp", "gt"):
        ours, reference = fid_case[name], fid_case[f"ref_{name}"]
        assert ours.shape == (4, 2048) and ours.dtype == np.float64
        assert reference.std() > 0
        np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-7 * np.abs(reference).max())


@pytest.mark.parametrize("dims", [16, 64])
def test_frechet_distance_equals_pytorch_fid_on_inception_features(
    fid_case: dict[str, np.ndarray], dims: int
) -> None:
    # SciPy's sqrtm of a 2048x2048 product takes minutes on two cores (see the slow test);
    # the formula is the same on the first ``dims`` features, with fewer images than dims.
    a, b = fid_case["ref_comp"][:, :dims], fid_case["ref_gt"][:, :dims]
    reference = fid_score.calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    ours = perceptual.frechet_distance(fid_case["comp"][:, :dims], fid_case["gt"][:, :dims])
    assert reference > 0
    assert ours == pytest.approx(reference, rel=1e-5)


@pytest.mark.parametrize(("n_a", "n_b", "dims"), [(5, 9, 40), (60, 45, 32), (200, 300, 24)])
def test_frechet_distance_equals_pytorch_fid(n_a: int, n_b: int, dims: int) -> None:
    # Fewer images than dimensions (singular covariances), and more (full rank).
    rng = np.random.default_rng(n_a)
    mixing = rng.normal(size=(dims, dims))
    a = rng.normal(size=(n_a, dims)) @ mixing
    b = rng.normal(size=(n_b, dims)) @ mixing * 1.3 + 0.5
    mu_a, sigma_a = perceptual.fid_statistics(a)
    mu_b, sigma_b = perceptual.fid_statistics(b)
    reference = fid_score.calculate_frechet_distance(mu_a, sigma_a, mu_b, sigma_b)
    assert perceptual.frechet_distance(a, b) == pytest.approx(reference, rel=1e-5)
    written_out = perceptual.frechet_distance_from_statistics(mu_a, sigma_a, mu_b, sigma_b)
    assert written_out == pytest.approx(reference, rel=1e-5)
    assert perceptual.frechet_distance(a, a) == pytest.approx(0, abs=1e-6 * reference)


def test_fid_of_fewer_than_two_images_is_nan() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((1, 8)), rng.random((5, 8))
    assert math.isnan(perceptual.frechet_distance(a, b))
    assert math.isnan(perceptual.frechet_distance(b, a[:0]))
    with pytest.raises(WmiError, match="do not match"):
        perceptual.frechet_distance(b, rng.random((5, 9)))


def test_fid_by_group_uses_each_groups_rows() -> None:
    rng = np.random.default_rng(0)
    pred, gt = rng.random((9, 6)), rng.random((9, 6))
    groups = ["a", "b", "a", "b", "a", "b", "a", "c", "a"]
    result = perceptual.fid_by_group(pred, gt, groups)
    assert list(result) == ["a", "b", "c"]
    rows_a = [0, 2, 4, 6, 8]
    assert result["a"] == perceptual.frechet_distance(pred[rows_a], gt[rows_a])
    assert math.isnan(result["c"])


@pytest.mark.slow
def test_fid_on_2048_features_equals_pytorch_fid(fid_case: dict[str, np.ndarray]) -> None:
    # pytorch-fid end to end: its statistics and calculate_frechet_distance on its features
    # (SciPy sqrtm of a singular 2048x2048 matrix: about a minute on two cores).
    a, b = fid_case["ref_comp"], fid_case["ref_gt"]
    reference = fid_score.calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    ours = perceptual.frechet_distance(fid_case["comp"], fid_case["gt"])
    assert ours == pytest.approx(reference, rel=1e-5)


# --------------------------------------------------------------------------------------------
# wmi eval


def _eval_folders(root: Path, n: int = 6, size: int = 48) -> None:
    """gt/, masks/ and two prediction folders; hole ratios in two buckets."""
    rng = np.random.default_rng(5)
    for folder in ("gt", "masks", "a", "b"):
        (root / folder).mkdir(parents=True)
    for i in range(n):
        gt = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        hole = np.zeros((size, size), bool)
        side = size // 4 if i % 2 else size // 2  # 6 % and 25 %
        hole[4 : 4 + side, 4 : 4 + side] = True
        Image.fromarray(gt).save(root / "gt" / f"{i}.png")
        Image.fromarray((hole * 255).astype(np.uint8)).save(root / "masks" / f"{i}.png")
        for folder, noise in (("a", 20), ("b", 60)):
            pred = np.clip(gt + rng.normal(0, noise, gt.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pred).save(root / folder / f"{i}.png")


def test_eval_reports_lpips_and_fid_overall_and_per_bucket(hub: Path, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from wmi.cli import app
    from wmi.inpaint.pixels import composite
    from wmi.io import read_image, read_mask

    _eval_folders(tmp_path)
    args = ["eval", "--gt", str(tmp_path / "gt"), "--masks", str(tmp_path / "masks")]
    args += [str(tmp_path / "a"), str(tmp_path / "b"), "--weights-dir", str(hub)]
    result = CliRunner().invoke(app, [*args, "--json", "-", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "left out" not in result.stderr
    data = json.loads(result.stdout)
    names = [f"{i}.png" for i in range(6)]
    gts = np.stack([read_image(tmp_path / "gt" / n) for n in names])
    holes = [read_mask(tmp_path / "masks" / n) for n in names]
    reference = lpips.LPIPS(net="alex", version="0.1", verbose=False)
    nets, _ = perceptual.PerceptualNets.load("alex", True, hub)
    gt_features = nets.fid_features(gts)
    for method, folder in zip(data["methods"], ("a", "b"), strict=True):
        assert list(method["metrics"])[-2:] == ["lpips", "fid"]
        comps = np.stack(
            [
                composite(gts[i], holes[i], read_image(tmp_path / folder / n))
                for i, n in enumerate(names)
            ]
        )
        to_t = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2)  # noqa: E731
        with torch.no_grad():
            expected = reference(to_t(comps), to_t(gts), normalize=True).reshape(-1).numpy()
        assert method["metrics"]["lpips"] == pytest.approx(float(expected.mean()), rel=1e-5)
        features = nets.fid_features(comps)
        fid = perceptual.frechet_distance(features, gt_features)
        assert method["metrics"]["fid"] == pytest.approx(fid, rel=1e-6)
        for bucket in method["buckets"]:
            rows = [i for i in range(6) if (i % 2 == 1) == (bucket["range"] == "0-10%")]
            expected_fid = perceptual.frechet_distance(features[rows], gt_features[rows])
            assert bucket["metrics"]["fid"] == pytest.approx(expected_fid, rel=1e-6)
            assert bucket["metrics"]["lpips"] == pytest.approx(
                float(expected[rows].mean()), rel=1e-5
            )
    table = result.stderr
    assert "LPIPS ↓" in table and "FID ↓" in table


def test_eval_without_weights_leaves_the_columns_out_with_one_line(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from wmi.cli import app

    _eval_folders(tmp_path, n=2)
    (tmp_path / "empty").mkdir()
    args = ["eval", "--gt", str(tmp_path / "gt"), "--masks", str(tmp_path / "masks")]
    args += [str(tmp_path / "a"), "--weights-dir", str(tmp_path / "empty"), "--json", "-"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if "left out" in line]
    assert len(lines) == 1, result.stderr
    assert ALEXNET_FILE in lines[0] and FID_INCEPTION_FILE in lines[0]
    assert str(tmp_path / "empty") in lines[0]
    metrics = json.loads(result.stdout)["methods"][0]["metrics"]
    assert "lpips" not in metrics and "fid" not in metrics
    quiet = CliRunner().invoke(app, [*args, "--no-perceptual"])
    assert quiet.exit_code == 0 and "left out" not in quiet.stderr


@pytest.mark.parametrize(
    "env",
    [{}, {"TORCH_HOME": "/x/th"}, {"XDG_CACHE_HOME": "/x/xdg"}, {"TORCH_HOME": "~/th"}],
)
def test_hub_folder_without_torch_is_torchs(env: dict[str, str]) -> None:
    import os
    import subprocess
    import sys

    code = (
        "import sys, wmi.weights as w; a = w.hub_checkpoints_dir(); "
        "assert 'torch' not in sys.modules; import torch; "
        "print(a == w.hub_checkpoints_dir(), a)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("TORCH_HOME", "XDG_CACHE_HOME")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
        env={**clean, **env},
    )
    assert out.stdout.startswith("True"), out.stdout


def test_eval_without_weights_does_not_import_torch(tmp_path: Path) -> None:
    import subprocess
    import sys

    _eval_folders(tmp_path, n=2)
    (tmp_path / "empty").mkdir()
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom wmi.cli import app\n"
        f"r = CliRunner().invoke(app, ['eval', '--gt', {str(tmp_path / 'gt')!r}, '--masks', "
        f"{str(tmp_path / 'masks')!r}, {str(tmp_path / 'a')!r}, '--weights-dir', "
        f"{str(tmp_path / 'empty')!r}])\n"
        "assert r.exit_code == 0, r.output\nprint('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
