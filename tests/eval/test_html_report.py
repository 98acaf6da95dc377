"""The self-contained HTML report: structure, best values, inlined images, size, a real browser."""

from __future__ import annotations

import base64
import io
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from wmi.eval.html_report import (
    MetricFact,
    ReportImage,
    facts_from_registry,
    render_html,
    select_images,
    write_html_report,
)
from wmi.masks import BUCKET_LABELS, hole_ratio_bucket

METHODS = ("WConv", "PConv", "Telea")
FACTS = [
    MetricFact("l1", "L1 (%) ↓", False),
    MetricFact("l2", "L2 (%) ↓", False),
    MetricFact("tv", "TV ↓", False),
    MetricFact("ssim", "SSIM ↑", True),
    MetricFact("psnr", "PSNR (dB) ↑", True),
]
SSIM = "gaussian 11x11 σ=1.5"


# ------------------------------------------------------------------------------ fake data


def _summarize(images: Sequence[ReportImage], methods: Sequence[str]) -> dict[str, Any]:
    """Results in wmi.eval.metrics.summarize's shape, from the per-image records."""

    def block(values: list[dict[str, float]]) -> dict[str, Any]:
        keys = list(values[0])
        return {
            "images": len(values),
            "psnr_infinite": sum(math.isinf(v.get("psnr", 0.0)) for v in values),
            "metrics": {k: float(np.mean([v[k] for v in values])) for k in keys},
        }

    out: dict[str, Any] = {"methods": []}
    for method in methods:
        rows = [im for im in images if method in im.metrics]
        buckets = []
        for label in BUCKET_LABELS:
            values = [im.metrics[method] for im in rows if im.bucket == label]
            if values:
                buckets.append({"range": label, **block(values)})
        out["methods"].append(
            {"name": method, **block([im.metrics[method] for im in rows]), "buckets": buckets}
        )
    return out


def _photo_source(size: int) -> list[np.ndarray]:
    """skimage's bundled colour photographs (no download), each at least ``size`` square."""
    import skimage.data

    photos = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        arr = getattr(skimage.data, name)()[..., :3]
        if min(arr.shape[:2]) < size:
            scale = size / min(arr.shape[:2])
            img = Image.fromarray(arr).resize(
                (math.ceil(arr.shape[1] * scale), math.ceil(arr.shape[0] * scale))
            )
            arr = np.asarray(img)
        photos.append(arr)
    return photos


def _hole(rng: np.random.Generator, size: int) -> np.ndarray:
    """A few random rectangles and discs; hole ratios spread over the buckets."""
    yy, xx = np.mgrid[:size, :size]
    hole = np.zeros((size, size), bool)
    target = rng.uniform(0.03, 0.7)
    while hole.mean() < target:
        if rng.random() < 0.5:
            y, x = rng.integers(0, size, 2)
            h, w = rng.integers(size // 10, size // 3, 2)
            hole[y : y + h, x : x + w] = True
        else:
            cy, cx = rng.integers(0, size, 2)
            r = rng.integers(size // 12, size // 4)
            hole |= (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
    return hole


def _fake_metrics(rng: np.random.Generator, i: int) -> dict[str, float]:
    """Plausible values for method number ``i`` (larger ``i``: worse on average)."""
    l1 = float(rng.gamma(2.0, 2.0 + 2.0 * i))
    return {
        "l1": l1,
        "l2": l1 * l1 / 10,
        "tv": float(rng.uniform(1, 5)),
        "ssim": float(np.clip(1 - l1 / 40, 0, 1)),
        "psnr": float(40 - l1),
    }


def make_dataset(
    folder: Path,
    n: int,
    size: int = 64,
    methods: Sequence[str] = METHODS,
    seed: int = 0,
    photos: bool = False,
    names: Sequence[str] | None = None,
    files: int | None = None,
) -> list[ReportImage]:
    """``n`` images with masks and one prediction per method; random metric values.

    Method ``i`` fills the hole with a blurrier, noisier guess the larger ``i`` is, and its
    metric values are worse on average, so the report looks like a real comparison. With
    ``files``, only that many sets of files are written and image ``k`` reuses set
    ``k % files`` (its own metric values): a large report without writing thousands of files.
    """
    rng = np.random.default_rng(seed)
    source = _photo_source(size) if photos else None
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    for k in range(n):
        name = names[k] if names else f"img{k:04d}.png"
        stem = f"f{k:04d}"
        if files is not None and k >= files:
            like = images[k % files]
            metrics = {m: _fake_metrics(rng, i) for i, m in enumerate(methods)}
            images.append(
                ReportImage(
                    name,
                    like.gt_path,
                    like.mask_path,
                    like.preds,
                    like.hole_ratio,
                    like.bucket,
                    metrics,
                )
            )
            continue
        if source is not None:
            photo = source[k % len(source)]
            y = rng.integers(0, photo.shape[0] - size + 1)
            x = rng.integers(0, photo.shape[1] - size + 1)
            gt = photo[y : y + size, x : x + size].astype(np.float32) / 255.0
        else:
            yy, xx = np.mgrid[:size, :size] / size
            gt = np.stack(
                [xx, yy, 0.5 + 0.5 * np.sin(6 * xx + k)], axis=2
            ) * 0.8 + 0.2 * rng.random((size, size, 3))
        hole = _hole(rng, size)
        gt_path = folder / f"{stem}.jpg"
        mask_path = folder / f"{stem}_mask.png"
        Image.fromarray((gt * 255).astype(np.uint8)).save(gt_path, quality=92)
        Image.fromarray(np.where(hole, 255, 0).astype(np.uint8)).save(mask_path)
        preds, metrics = {}, {}
        mean = gt[~hole].mean(axis=0) if (~hole).any() else np.full(3, 0.5)
        for i, method in enumerate(methods):
            guess = (1 - 0.3 * i) * gt + 0.3 * i * mean + rng.normal(0, 0.03 * (i + 1), gt.shape)
            pred = np.where(hole[..., None], np.clip(guess, 0, 1), gt)
            pred_path = folder / f"m{i}" / f"{stem}.jpg"
            pred_path.parent.mkdir(exist_ok=True)
            Image.fromarray((pred * 255).astype(np.uint8)).save(pred_path, quality=92)
            preds[method] = pred_path
            metrics[method] = _fake_metrics(rng, i)
        images.append(
            ReportImage(
                name=name,
                gt_path=gt_path,
                mask_path=mask_path,
                preds=preds,
                hole_ratio=float(hole.mean()),
                bucket=hole_ratio_bucket(float(hole.mean())),
                metrics=metrics,
            )
        )
    return images


# ------------------------------------------------------------------------------ parsing


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.text_parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.text_parts) + "".join(c.text for c in self.children)

    def iter(self, tag: str | None = None) -> list[Node]:
        out = [self] if tag in (None, self.tag) else []
        for c in self.children:
            out += c.iter(tag)
        return out

    def find(self, tag: str, **attrs: str) -> list[Node]:
        return [n for n in self.iter(tag) if all(n.attrs.get(k) == v for k, v in attrs.items())]

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())


VOID = {"meta", "img", "br", "input", "link", "hr", "circle", "line", "polyline"}


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.cur = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.cur)
        self.cur.children.append(node)
        if tag not in VOID:
            self.cur = node

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.cur.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.cur))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        node = self.cur
        while node is not None and node.tag != tag:
            node = node.parent
        assert node is not None and node.parent is not None, f"unbalanced </{tag}>"
        self.cur = node.parent

    def handle_data(self, data: str) -> None:
        self.cur.text_parts.append(data)


def parse(text: str) -> Node:
    builder = TreeBuilder()
    builder.feed(text)
    builder.close()
    assert builder.cur is builder.root, "unclosed elements"
    return builder.root


def decode(uri: str) -> Image.Image:
    head, _, data = uri.partition(",")
    assert head == "data:image/jpeg;base64", head
    img = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
    img.load()
    assert img.format == "JPEG"
    return img


def _value(text: str) -> float:
    return math.inf if text == "inf" else float(text)


# ------------------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> list[ReportImage]:
    return make_dataset(tmp_path_factory.mktemp("data"), 20)


def _write(tmp_path: Path, images: list[ReportImage], **kwargs: Any) -> tuple[Path, Node]:
    results = kwargs.pop("results", None) or _summarize(images, METHODS)
    kwargs.setdefault("ssim_window", SSIM)
    kwargs.setdefault("title", "Test report")
    path = write_html_report(tmp_path / "r" / "report.html", results, images, FACTS, **kwargs)
    return path, parse(path.read_text(encoding="utf-8"))


def test_structure(tmp_path: Path, dataset: list[ReportImage]) -> None:
    path, root = _write(tmp_path, dataset, per_section=3)
    assert path == tmp_path / "r" / "report.html"
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp file left
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # Self-contained: no external resource of any kind.
    for tag, attr in (("img", "src"), ("script", "src"), ("link", "href")):
        for node in root.iter(tag):
            assert not node.attrs.get(attr, "data:").startswith(("http", "//")), node.attrs
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text
    assert root.find("title")[0].text == "Test report"
    assert SSIM in text

    (table_one,) = root.find("table", id="table-one")
    header = [th.text for th in table_one.iter("thead")[0].iter("th")]
    assert header[2:] == list(METHODS)
    sections = [th.text for th in table_one.find("th", scope="rowgroup")]
    assert sections[0] == "all"
    assert sections[1:] == sorted({im.bucket for im in dataset}, key=BUCKET_LABELS.index)
    metric_rows = [
        tr.attrs["data-metric"] for tr in table_one.iter("tr") if "data-metric" in tr.attrs
    ]
    assert metric_rows == [f.key for f in FACTS] * len(sections)

    charts = root.find("svg")
    assert [c.attrs["data-metric"] for c in charts] == [f.key for f in FACTS]
    for chart in charts:
        assert [g.attrs["data-method"] for g in chart.find("g")] == list(METHODS)
        assert chart.iter("polyline")
    legend = root.find("div", **{"class": "legend"})[0].text
    assert all(m in legend for m in METHODS)

    (per_image,) = root.find("table", id="per-image")
    assert len(per_image.iter("tbody")[0].iter("tr")) == len(dataset)
    sortable = per_image.find("th")
    by_metric = [
        (th.attrs["data-metric"], th.attrs["data-method"])
        for th in sortable
        if "data-metric" in th.attrs
    ]
    assert by_metric == [(f.key, m) for f in FACTS for m in METHODS]

    strips = root.find("div", **{"class": "strip"})
    assert strips
    for strip in strips:
        captions = [fig.iter("b")[0].text for fig in strip.iter("figure")]
        assert captions == ["masked input", *METHODS, "ground truth"]
        assert len(strip.iter("img")) == len(METHODS) + 2
    assert len(root.iter("script")) == 1


def test_best_values_marked(tmp_path: Path, dataset: list[ReportImage]) -> None:
    _, root = _write(tmp_path, dataset)
    directions = {f.key: f.higher_is_better for f in FACTS}
    (table_one,) = root.find("table", id="table-one")
    checked = 0
    for tr in table_one.iter("tr"):
        key = tr.attrs.get("data-metric")
        if key is None:
            continue
        cells = tr.iter("td")[1:]
        values = [_value(td.text) for td in cells if td.text != "-"]
        marked = [_value(td.text) for td in cells if "best" in td.classes()]
        assert all(td.iter("b") for td in cells if "best" in td.classes())
        target = max(values) if directions[key] else min(values)
        assert marked and set(marked) == {target}, (key, values, marked)
        checked += 1
    assert checked >= len(FACTS) * 2
    # Per-image table: one best per (row, metric) group at least, and it is the best.
    (per_image,) = root.find("table", id="per-image")
    for tr in per_image.iter("tbody")[0].iter("tr")[:5]:
        tds = tr.iter("td")[3:]
        for i, fact in enumerate(FACTS):
            group = tds[i * len(METHODS) : (i + 1) * len(METHODS)]
            values = [float(td.text) for td in group]
            best = [float(td.text) for td in group if "best" in td.classes()]
            assert set(best) == {max(values) if fact.higher_is_better else min(values)}


def test_best_respects_direction_ties_and_missing(tmp_path: Path) -> None:
    def method(name: str, l1: float, ssim: float, buckets: list[tuple[str, float]]) -> dict:
        return {
            "name": name,
            "images": 4,
            "psnr_infinite": 0,
            "metrics": {"l1": l1, "ssim": ssim},
            "buckets": [
                {"range": r, "images": 2, "psnr_infinite": 0, "metrics": {"l1": v, "ssim": 0.5}}
                for r, v in buckets
            ],
        }

    results = {
        "methods": [
            method("A", 3.0, 0.9, [("0-10%", 1.0), ("10-20%", 5.0)]),
            method("B", 2.0, 0.8, [("0-10%", 1.0)]),  # tie in 0-10 %, absent in 10-20 %
        ]
    }
    text = render_html(results, [], FACTS, ssim_window=SSIM)
    (table_one,) = parse(text).find("table", id="table-one")
    rows = [
        (tr.attrs["data-metric"], tr.iter("td"))
        for tr in table_one.iter("tr")
        if "data-metric" in tr.attrs
    ]
    marks = [[("best" in td.classes(), td.text) for td in tds[1:]] for _, tds in rows]
    assert [k for k, _ in rows] == ["l1", "ssim", "l1", "ssim", "l1", "ssim"]
    assert marks[0] == [(False, "3.000"), (True, "2.000")]  # lower L1 is better
    assert marks[1] == [(True, "0.900"), (False, "0.800")]  # higher SSIM is better
    assert marks[2] == [(True, "1.000"), (True, "1.000")]  # a tie marks both
    assert marks[3] == [(True, "0.500"), (True, "0.500")]
    assert marks[4] == [(False, "5.000"), (False, "-")]  # one value: nothing to compare
    assert "No per-image records" in text


def test_images_decode_and_are_small(tmp_path: Path) -> None:
    images = make_dataset(tmp_path / "d", 8, size=96)
    _, root = _write(tmp_path, images, thumb_size=48, full_size=80, per_section=2)
    imgs = root.iter("img")
    assert imgs
    for img in imgs[:-1]:  # the last one is the empty lightbox
        thumb = decode(img.attrs["src"])
        assert max(thumb.size) == 48
        full = decode(img.attrs["data-full"])
        assert max(full.size) == 80
    # Thumbnails as large as the images: no second copy for the lightbox.
    _, root = _write(tmp_path, images, thumb_size=256, per_section=2)
    for img in root.iter("img")[:-1]:
        assert decode(img.attrs["src"]).size == (96, 96)
        assert "data-full" not in img.attrs


def test_masked_input_shows_the_hole(tmp_path: Path) -> None:
    images = make_dataset(tmp_path / "d", 1, size=64)
    _, root = _write(tmp_path, images, jpeg_quality=95)
    masked = np.asarray(decode(root.find("img")[0].attrs["src"]), dtype=np.float64)
    hole = np.asarray(Image.open(images[0].mask_path)) > 127
    assert masked[hole].mean() > 245  # white hole (JPEG blurs the edges a little)
    gt = np.asarray(Image.open(images[0].gt_path), dtype=np.float64)
    inner = (
        ~hole
        & ~np.roll(hole, 1, 0)
        & ~np.roll(hole, -1, 0)
        & ~np.roll(hole, 1, 1)
        & ~np.roll(hole, -1, 1)
    )
    assert np.abs(masked[inner] - gt[inner]).mean() < 8


def test_each_image_inlined_once(tmp_path: Path, dataset: list[ReportImage]) -> None:
    # With 20 images and 6 per section, several images are both worst of one method and
    # something else: their pictures appear once, later mentions link to the first strip.
    _, root = _write(tmp_path, dataset, per_section=6)
    strips = root.find("div", **{"class": "strip"})
    names = [s.attrs["data-image"] for s in strips]
    assert len(names) == len(set(names))
    dups = root.find("div", **{"class": "strip dup"})
    assert dups, "expected some image to be picked by two sections"
    ids = {s.attrs["id"] for s in strips}
    for dup in dups:
        assert dup.iter("a")[0].attrs["href"][1:] in ids
    srcs = [img.attrs["src"] for img in root.iter("img")[:-1]]
    assert len(srcs) == len(strips) * (len(METHODS) + 2)


def test_selection() -> None:
    def im(name: str, a: float, b: float) -> ReportImage:
        return ReportImage(
            name, Path("g"), Path("m"), {}, 0.1, "0-10%", {"A": {"l1": a}, "B": {"l1": b}}
        )

    images = [im("x", 1, 9), im("y", 5, 5), im("z", 2, 3), im("w", 8, 1)]
    l1 = MetricFact("l1", "L1 ↓", False)
    sections = dict(
        (h, [i.name for i in ims]) for h, ims in select_images(images, ["A", "B"], l1, 2, 0)
    )
    assert sections["Where the methods differ most (spread of L1 ↓)"] == ["x", "w"]
    assert sections["A: worst by L1 ↓"] == ["w", "y"]
    assert sections["A: best by L1 ↓"] == ["x", "z"]
    assert sections["B: worst by L1 ↓"] == ["x", "y"]
    assert sections["B: best by L1 ↓"] == ["w", "z"]
    ssim = MetricFact("l1", "S ↑", True)  # higher is better: best and worst swap
    sections = dict(
        (h, [i.name for i in ims]) for h, ims in select_images(images, ["A", "B"], ssim, 2, 0)
    )
    assert sections["A: best by S ↑"] == ["w", "y"]
    # Seeded and independent of input order.
    first = select_images(images, ["A", "B"], l1, 2, 7)[-1][1]
    again = select_images(images[::-1], ["A", "B"], l1, 2, 7)[-1][1]
    assert [i.name for i in first] == [i.name for i in again]
    assert (
        len(
            {
                tuple(i.name for i in select_images(images, ["A"], l1, 2, s)[-1][1])
                for s in range(10)
            }
        )
        > 1
    )
    # One method: no "differ most" section.
    assert not any("differ" in h for h, _ in select_images(images, ["A"], l1, 2, 0))


def test_seed_changes_only_the_sample(tmp_path: Path, dataset: list[ReportImage]) -> None:
    results = _summarize(dataset, METHODS)
    one = render_html(results, dataset, FACTS, ssim_window=SSIM, seed=1, per_section=2)
    same = render_html(results, dataset, FACTS, ssim_window=SSIM, seed=1, per_section=2)
    other = render_html(results, dataset, FACTS, ssim_window=SSIM, seed=2, per_section=2)
    assert one == same
    assert one != other


def test_names_are_escaped(tmp_path: Path) -> None:
    evil = '<script>alert("x")</script>&.png'
    images = make_dataset(tmp_path / "d", 2, names=[evil, "ok.png"], methods=["<b>A</b>", "B"])
    results = _summarize(images, ["<b>A</b>", "B"])
    path = write_html_report(
        tmp_path / "r.html", results, images, FACTS, ssim_window="<i>w</i>", title="<t>"
    )
    text = path.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "<b>A</b>" not in text and "<i>w</i>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;.png" in text
    root = parse(text)
    assert len(root.iter("script")) == 1
    assert any(s.attrs.get("data-image") == evil for s in root.find("div"))
    (table_one,) = root.find("table", id="table-one")
    assert "<b>A</b>" in [th.text for th in table_one.iter("th")]


def test_new_metric_keys_extra_facts_and_fallback(
    tmp_path: Path, dataset: list[ReportImage]
) -> None:
    images = []
    for k, im in enumerate(dataset):
        metrics = {
            m: {**v, "lpips": 0.1 * (i + 1) + 0.001 * k, "fid": 10.0 - i}
            for i, (m, v) in enumerate(im.metrics.items())
        }
        images.append(
            ReportImage(
                im.name, im.gt_path, im.mask_path, im.preds, im.hole_ratio, im.bucket, metrics
            )
        )
    results = _summarize(images, METHODS)
    facts = [*FACTS, ("lpips", "LPIPS ↓", False)]  # tuples work too; fid has no fact
    text = render_html(results, images, facts, ssim_window=SSIM)
    root = parse(text)
    (table_one,) = root.find("table", id="table-one")
    rows = {tr.attrs["data-metric"]: tr for tr in table_one.iter("tr") if "data-metric" in tr.attrs}
    assert list(rows)[-2:] == ["lpips", "fid"]
    assert rows["lpips"].iter("td")[0].text == "LPIPS ↓"
    assert rows["fid"].iter("td")[0].text == "fid"
    # fid falls back to lower is better: Telea (10 - 2) is best.
    assert ["best" in td.classes() for td in rows["fid"].iter("td")[1:]] == [False, False, True]
    assert [c.attrs["data-metric"] for c in root.find("svg")][-2:] == ["lpips", "fid"]


def test_facts_from_registry() -> None:
    facts = {f.key: f for f in facts_from_registry({"fid": ("FID ↓", False)})}
    assert facts["ssim"].higher_is_better and not facts["l1"].higher_is_better
    assert facts["l1"].label.endswith("↓")
    assert facts["fid"] == MetricFact("fid", "FID ↓", False)


def test_unreadable_files_do_not_fail_the_report(tmp_path: Path) -> None:
    images = make_dataset(tmp_path / "d", 3)
    images[0].preds["PConv"].unlink()
    images[1].preds["Telea"].write_bytes(b"not an image")
    del images[2].preds["WConv"]
    _, root = _write(tmp_path, images, per_section=3)
    errors = root.find("div", **{"class": "err"})
    assert len(errors) == 3
    assert all(e.text == "unreadable" and e.attrs["title"] for e in errors)


def test_empty_and_single_method(tmp_path: Path, dataset: list[ReportImage]) -> None:
    results = _summarize(dataset, ["WConv"])
    _, root = _write(tmp_path, dataset, results=results)
    (table_one,) = root.find("table", id="table-one")
    assert not table_one.find("td", **{"class": "num best"})  # nothing to compare
    strips = root.find("div", **{"class": "strip"})
    assert all(len(s.iter("img")) == 3 for s in strips)


def test_rewrite_is_atomic(
    tmp_path: Path, dataset: list[ReportImage], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = _write(tmp_path, dataset[:4])
    before = path.read_bytes()
    import wmi.eval.html_report as mod

    def boom(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(mod.Path, "write_text", boom)
    with pytest.raises(RuntimeError):
        _write(tmp_path, dataset[:4], seed=5)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]


def test_no_torch_import() -> None:
    code = "import sys, wmi.eval.html_report; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


@pytest.mark.slow
def test_thousand_images_stay_light(tmp_path: Path) -> None:
    # 200 distinct sets of files (photo crops), 1,000 records: the report reads and inlines
    # only the ~50 images its strips show, each a distinct record.
    images = make_dataset(tmp_path / "d", 1000, size=256, photos=True, seed=3, files=200)
    results = _summarize(images, METHODS)
    start = time.perf_counter()
    path = write_html_report(tmp_path / "big.html", results, images, FACTS, ssim_window=SSIM)
    seconds = time.perf_counter() - start
    size = path.stat().st_size
    print(f"1,000 images at 256x256, 3 methods: {size / 1e6:.2f} MB in {seconds:.1f} s")
    assert size < 5_000_000
    assert seconds < 30
    root = parse(path.read_text(encoding="utf-8"))
    assert len(root.find("table", id="per-image")[0].iter("tbody")[0].iter("tr")) == 1000


# ------------------------------------------------------------------------------ a browser


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name):
            return found
    pytest.skip("chromium not installed: apt-get install chromium")


def _run_chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--mute-audio",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.mark.slow
def test_chromium_renders_the_report(tmp_path: Path, dataset: list[ReportImage]) -> None:
    binary = _chromium()
    path, _ = _write(tmp_path, dataset, per_section=2)
    url = path.resolve().as_uri()

    dom = parse(_run_chromium(binary, tmp_path / "p1", "--dump-dom", url).stdout)
    (body,) = dom.iter("body")
    assert body.attrs.get("data-js") == "ok", "the inline script did not run"
    n_imgs = len(dom.iter("img")) - 1  # the lightbox's is empty
    assert n_imgs > 0
    assert body.attrs.get("data-images-ok") == str(n_imgs), "the browser failed to decode images"
    assert body.attrs.get("data-images-bad") == "0"
    assert dom.find("table", id="table-one") and dom.find("table", id="per-image")
    assert len(dom.find("svg")) == len(FACTS)
    text = body.text
    for method in METHODS:
        assert method in text

    # Clicking: sort by PConv's L1 (twice: descending), open the lightbox on a tile.
    script = (
        "<script>window.addEventListener('load',function(){"
        "var th=document.querySelector('th[data-metric=l1][data-method=PConv]');th.click();"
        "th.click();document.querySelector('.tiles img').click();});</script></body>"
    )
    clicked = tmp_path / "r" / "clicked.html"
    clicked.write_text(path.read_text(encoding="utf-8").replace("</body>", script), "utf-8")
    dom = parse(_run_chromium(binary, tmp_path / "p2", "--dump-dom", clicked.as_uri()).stdout)
    (per_image,) = dom.find("table", id="per-image")
    column = 3 + METHODS.index("PConv")  # image, hole %, bucket, then L1 per method
    shown = [float(tr.iter("td")[column].text) for tr in per_image.iter("tbody")[0].iter("tr")]
    assert shown == sorted(shown, reverse=True)
    (lightbox,) = dom.find("div", id="lb")
    assert lightbox.attrs.get("class") == "on"
    assert lightbox.iter("img")[0].attrs["src"].startswith("data:image/jpeg;base64,")

    shot = tmp_path / "shot.png"
    _run_chromium(binary, tmp_path / "p3", f"--screenshot={shot}", "--window-size=1200,1600", url)
    img = Image.open(shot)
    assert img.format == "PNG" and img.size == (1200, 1600)
    pixels = np.asarray(img.convert("RGB"), dtype=np.float64)
    assert pixels.std() > 20, "blank screenshot"
    assert len(np.unique(pixels.reshape(-1, 3)[::97], axis=0)) > 100, (
        "too few colours: no pictures?"
    )
