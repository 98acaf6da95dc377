"""A self-contained HTML report of an evaluation: Table I, charts, image strips, per-image table.

One file with everything inlined (images as base64 JPEG, CSS, a little JavaScript, SVG charts):
no network, no CDN, opens in any browser. It shows

* Table I, overall and per hole-ratio bucket, with the best value of each row marked;
* one chart per metric: the mean per bucket, one line per method;
* side-by-side strips (masked input | each method | ground truth) for the images where the
  methods differ most, the worst and best images of each method, and a seeded random sample;
  clicking a tile opens it large (arrow keys step through the strip, Esc closes);
* a per-image table, sorted by any column on a header click.

Only the images shown in strips are read and inlined, each once however many sections pick
it, so the size depends on ``per_section``, ``thumb_size`` and ``full_size``, not on the number
of images (1,000 images at 256x256 give about 3 MB, most of it thumbnails).

This module imports neither torch nor :mod:`wmi.eval.report`; the metric labels and directions are
passed in (:func:`facts_from_registry` builds them from :data:`wmi.kinds.METRICS`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wmi.errors import printable
from wmi.eval.compare import MARKS, comparison_marks
from wmi.eval.html_charts import PALETTE, chart, legend, sections
from wmi.eval.html_records import (
    MISSING,
    FactLike,
    MetricFact,
    ReportImage,
    best_of,
    esc,
    fmt_value,
    is_value,
    short_label,
)
from wmi.eval.html_strips import Tile, select_images, tiles, value_of
from wmi.io import atomic_path

if TYPE_CHECKING:
    from wmi.eval.scoring import FolderScores

__all__ = [
    "MetricFact",
    "ReportImage",
    "facts_from_registry",
    "render_html",
    "select_images",
    "write_eval_report",
    "write_html_report",
]


def facts_from_registry(
    extra: Mapping[str, tuple[str, bool]] | None = None,
) -> list[MetricFact]:
    """The metric facts of :data:`wmi.kinds.METRICS` and ``NETWORK_METRICS`` (LPIPS, FID),
    plus ``extra`` (key -> (label, higher)), which win over registry entries of the same key.
    """
    from wmi.kinds import METRICS, NETWORK_METRICS

    facts = {
        e.name: MetricFact(e.name, e.label or e.name, e.higher_is_better)
        for e in (*METRICS.entries(), *NETWORK_METRICS.entries())
    }
    for key, (label, higher) in (extra or {}).items():
        facts[key] = MetricFact(key, label, higher)
    return list(facts.values())


def report_images(scored: FolderScores) -> list[ReportImage]:
    """One :class:`ReportImage` per image of a ``wmi eval`` run, masks without a hole left out.

    Images with a file that could not be used are kept (without metrics): their strip names the
    problem.
    """
    from wmi.masks import hole_ratio_bucket

    methods = [m["name"] for m in scored.results["methods"]]
    return [
        ReportImage(
            name=s.name,
            gt_path=s.paths["gt"],
            mask_path=s.paths["mask"],
            preds={m: s.paths[m] for m in methods if m in s.paths},
            hole_ratio=s.hole_ratio,
            bucket=hole_ratio_bucket(s.hole_ratio),
            metrics=s.metrics,
        )
        for s in scored.scores
        if s.unreadable or not s.skipped
    ]


def write_eval_report(path: str | os.PathLike[str], scored: FolderScores, **options: Any) -> Path:
    """The HTML report of a :func:`wmi.eval.scoring.score_folders` result (``wmi eval --html``).

    Args:
        path: the ``.html`` file to write.
        scored: what :func:`wmi.eval.scoring.score_folders` returned.
        options: :func:`write_html_report`'s keyword arguments (``title``, ``seed``, ...).
    """
    from wmi.eval.report import ssim_window_label

    return write_html_report(
        path,
        scored.results,
        report_images(scored),
        facts_from_registry(),
        ssim_window=ssim_window_label(scored.results),
        **options,
    )


def _as_facts(metric_facts: Iterable[FactLike]) -> dict[str, MetricFact]:
    out: dict[str, MetricFact] = {}
    for fact in metric_facts:
        if not isinstance(fact, MetricFact):
            key, label, higher = fact
            fact = MetricFact(key, label, bool(higher))
        out[fact.key] = fact
    return out


def _metric_keys(results: Mapping[str, Any], images: Sequence[ReportImage]) -> list[str]:
    """Every metric key present, in order of first appearance (results first, then images)."""
    keys: dict[str, None] = {}
    for method in results["methods"]:
        keys.update(dict.fromkeys(method["metrics"]))
        for bucket in method.get("buckets", []):
            keys.update(dict.fromkeys(bucket["metrics"]))
    for image in images:
        for values in image.metrics.values():
            keys.update(dict.fromkeys(values))
    return list(keys)


# ------------------------------------------------------------------------------ HTML parts


def _table_one(
    results: Mapping[str, Any], keys: Sequence[str], facts: Mapping[str, MetricFact]
) -> str:
    names = [m["name"] for m in results["methods"]]
    head = "".join(
        f'<th class="num"><span class="sw" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
        f"{esc(n)}</th>"
        for i, n in enumerate(names)
    )
    rows = []
    marks = comparison_marks(results, lambda key: facts[key].higher_is_better)
    for label, blocks in sections(results):
        present = [k for k in keys if any(k in b["metrics"] for b in blocks.values())]
        span = 1 + len(present)
        cells = "".join(
            f'<td class="num">{esc(blocks[n]["images"]) if n in blocks else MISSING}</td>'
            for n in names
        )
        rows.append(
            f'<tr class="sec"><th rowspan="{span}" scope="rowgroup">{esc(label)}</th>'
            f"<td>images</td>{cells}</tr>"
        )
        for key in present:
            fact = facts[key]
            values = {n: blocks[n]["metrics"].get(key) for n in names if n in blocks}
            best = best_of(values, fact.higher_is_better)
            tds = []
            for n in names:
                text = fmt_value(values.get(n))
                low, high = blocks.get(n, {}).get("ci95", {}).get(key, (None, None))
                if is_value(low) and is_value(high):
                    text += f' <span class="pm">± {(high - low) / 2:.3f}</span>'
                mark = marks.get((n, label, key), "")
                if mark:
                    than = esc(results["baseline"])
                    text += (
                        f' <span class="{mark}" title="significantly {mark} than {than}">'
                        f"{MARKS[mark]}</span>"
                    )
                if n in best:
                    tds.append(f'<td class="num best"><b>{text}</b></td>')
                else:
                    tds.append(f'<td class="num">{text}</td>')
            rows.append(
                f'<tr data-metric="{esc(key)}"><td>{esc(fact.label)}</td>{"".join(tds)}</tr>'
            )
    return (
        '<table id="table-one" class="grid">'
        f"<thead><tr><th>holes</th><th>metric</th>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _numbers(
    image: ReportImage, method: str, keys: Sequence[str], facts: Mapping[str, MetricFact]
) -> str:
    values = image.metrics.get(method, {})
    return " · ".join(
        f"{esc(short_label(facts[k].label))} {fmt_value(values.get(k))}"
        for k in keys
        if k in values
    )


def _strip(
    image: ReportImage,
    anchor: str,
    row: str,
    tiles: Sequence[Tile],
    methods: Sequence[str],
    keys: Sequence[str],
    facts: Mapping[str, MetricFact],
) -> str:
    figs = []
    for i, tile in enumerate(tiles):
        numbers = ""
        if 0 < i <= len(methods):
            numbers = _numbers(image, methods[i - 1], keys, facts)
        caption = f"{image.name} — {tile.caption}"
        if tile.thumb:
            full = f' data-full="{tile.full}"' if tile.full else ""
            body = (
                f'<img src="{tile.thumb}"{full} alt="{esc(caption)}" '
                f'data-cap="{esc(caption + (" — " + numbers if numbers else ""))}" loading="lazy">'
            )
        else:
            body = f'<div class="err" title="{esc(tile.error)}">unreadable</div>'
        figs.append(
            f'<figure><div class="frame">{body}</div><figcaption><b>{esc(tile.caption)}</b>'
            f"{'<br>' + numbers if numbers else ''}</figcaption></figure>"
        )
    head = (
        f'<div class="sh"><a href="#{row}" class="nm" title="its row in the per-image table">'
        f"{esc(image.name)}</a> "
        f'<span class="mu">hole {100 * image.hole_ratio:.1f}% · {esc(image.bucket)}</span></div>'
    )
    return (
        f'<div class="strip" id="{anchor}" data-image="{esc(image.name)}">{head}'
        f'<div class="tiles">{"".join(figs)}</div></div>'
    )


def _image_table(
    ordered: Sequence[ReportImage],
    rows_ids: Mapping[int, str],
    methods: Sequence[str],
    keys: Sequence[str],
    facts: Mapping[str, MetricFact],
    anchors: Mapping[int, str],
) -> str:
    top = [
        '<th rowspan="2" data-type="text">image</th>',
        '<th rowspan="2">hole %</th>',
        '<th rowspan="2" data-type="text">bucket</th>',
    ]
    sub = []
    for key in keys:
        top.append(f'<th colspan="{len(methods)}" class="grp">{esc(facts[key].label)}</th>')
        for method in methods:
            sub.append(
                f'<th class="num" data-metric="{esc(key)}" data-method="{esc(method)}" '
                f'data-higher="{int(facts[key].higher_is_better)}">{esc(method)}</th>'
            )
    rows = []
    for im in ordered:
        # Lean cells (1,000 rows x methods x metrics): the sorting script reads the text.
        anchor = anchors.get(id(im))
        name = esc(im.name)
        cell = f'<a href="#{anchor}">{name}</a>' if anchor else name
        tds = [
            f'<td id="{rows_ids[id(im)]}">{cell}</td>',
            f"<td>{100 * im.hole_ratio:.1f}</td>",
            f"<td>{esc(im.bucket)}</td>",
        ]
        for key in keys:
            values = {m: im.metrics.get(m, {}).get(key) for m in methods}
            best = best_of(values, facts[key].higher_is_better)
            for m in methods:
                tds.append(
                    f'<td class="best">{fmt_value(values[m])}</td>'
                    if m in best
                    else f"<td>{fmt_value(values[m])}</td>"
                )
        rows.append(f"<tr>{''.join(tds)}</tr>")
    # A thicker line before each metric's first method, without a class on every cell.
    m = len(methods)
    style = (
        f"<style>#per-image td:nth-child({m}n+4),"
        f"#per-image thead tr+tr th:nth-child({m}n+1){{border-left:2px solid #999}}</style>"
    )
    return (
        f'{style}<table id="per-image" class="grid sortable">'
        f"<thead><tr>{''.join(top)}</tr><tr>{''.join(sub)}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


CSS = """
:root{--fg:#1d1d1f;--mu:#6e6e73;--bd:#d2d2d7;--bg:#fff;--alt:#f5f5f7;--best:#0a7d32}
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;padding:16px 24px 48px;max-width:1500px}
h1{font-size:22px;margin:4px 0}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--bd)}
h3{font-size:15px;margin:18px 0 6px}
.mu{color:var(--mu)}.meta{color:var(--mu);margin:0 0 8px}
nav a{margin-right:14px}
table.grid{border-collapse:collapse;font-variant-numeric:tabular-nums}
.grid th,.grid td{border:1px solid var(--bd);padding:3px 8px;text-align:left;white-space:nowrap}
.grid thead th{background:var(--alt);position:sticky;top:0;line-height:20px}
#per-image thead tr+tr th{top:27px}
.grid .num{text-align:right}
.grid td.best{color:var(--best);background:#e9f7ee}
#table-one td.best b{font-weight:700}
.pm{color:var(--mu);font-weight:400}.better{color:#0a7d32}.worse{color:#c0392b}
#table-one tr.sec td,#table-one tr.sec th{border-top:2px solid #999}
.sortable thead tr:last-child th,.sortable th[data-type]{cursor:pointer}
.sortable th.asc::after{content:" ▲"}.sortable th.desc::after{content:" ▼"}
.sortable tbody tr:nth-child(even){background:#fafafa}
.scroll{overflow:auto;max-height:80vh;border:1px solid var(--bd)}
.grp{text-align:center!important}
#per-image td{text-align:right}
#per-image td:first-child,#per-image td:nth-child(3){text-align:left}
.top{display:flex;flex-wrap:wrap;gap:0 32px;align-items:flex-start}.top .grow{flex:1 1 360px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.chart{border:1px solid var(--bd);border-radius:4px;background:#fff}
.chart .ct{font-weight:600;font-size:13px}.chart .tk{font-size:10px;fill:var(--mu)}
.chart .gl{stroke:#e5e5ea}.chart .cn{fill:var(--mu)}
.legend{margin:6px 0}.li{margin-right:16px;white-space:nowrap}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.strip{margin:10px 0 14px}.sh{margin-bottom:3px}.nm{font-weight:600}
.tiles{display:flex;gap:6px;overflow-x:auto}
figure{margin:0;width:172px;flex:none}
.frame{width:172px;height:172px;display:flex;align-items:center;justify-content:center;
background:var(--alt);border:1px solid var(--bd)}
.frame img{max-width:170px;max-height:170px;cursor:zoom-in;display:block}
.err{color:#b00;font-size:12px}
figcaption{font-size:11px;line-height:1.3;margin-top:2px;color:var(--mu)}
figcaption b{color:var(--fg);font-weight:600}
#lb{position:fixed;inset:0;background:rgba(0,0,0,.88);display:none;flex-direction:column;
align-items:center;justify-content:center;z-index:10;cursor:zoom-out}
#lb.on{display:flex}#lb img{max-width:96vw;max-height:88vh;min-width:min(512px,96vw);
image-rendering:auto;object-fit:contain}
#lb div{color:#eee;margin-top:8px;font-size:13px;text-align:center}
"""

JS = """
(function(){
var lb=document.getElementById('lb'),lbi=lb.querySelector('img'),lbc=lb.querySelector('div');
var group=[],pos=0;
function show(i){pos=(i+group.length)%group.length;var im=group[pos];
lbi.src=im.getAttribute('data-full')||im.src;lbc.textContent=im.getAttribute('data-cap')+
(group.length>1?'  ('+(pos+1)+'/'+group.length+', \\u2190 \\u2192)':'');}
document.addEventListener('click',function(ev){var t=ev.target;
if(t.tagName==='IMG'&&t.closest('.tiles')){group=Array.prototype.slice.call(
t.closest('.tiles').querySelectorAll('img'));show(group.indexOf(t));lb.classList.add('on');}
else if(lb.classList.contains('on')&&lb.contains(t)){lb.classList.remove('on');lbi.src='';}});
document.addEventListener('keydown',function(ev){if(!lb.classList.contains('on'))return;
if(ev.key==='Escape'){lb.classList.remove('on');lbi.src='';}
else if(ev.key==='ArrowRight')show(pos+1);else if(ev.key==='ArrowLeft')show(pos-1);});
function key(td,text){var v=td?td.textContent:'';if(text)return v;
return v==='inf'?Infinity:v==='-inf'?-Infinity:parseFloat(v);}
document.querySelectorAll('table.sortable').forEach(function(table){
var body=table.tBodies[0],heads=[],rows=table.tHead.rows;
for(var c=0,i=0;i<rows[0].cells.length;i++){var th=rows[0].cells[i];
if(th.rowSpan>1){heads.push([th,c]);c++;}else{for(var j=0;j<th.colSpan;j++){heads.push(null);c++;}}}
var k=0;for(var h=0;h<heads.length;h++){if(heads[h]===null){heads[h]=[rows[1].cells[k],h];k++;}}
heads.forEach(function(pair){var th=pair[0],col=pair[1];th.addEventListener('click',function(){
var text=th.getAttribute('data-type')==='text';
var dir=th.classList.contains('asc')?-1:1;
table.querySelectorAll('th').forEach(function(o){o.classList.remove('asc','desc');});
th.classList.add(dir>0?'asc':'desc');
var list=Array.prototype.slice.call(body.rows);
list.sort(function(a,b){var x=key(a.cells[col],text),y=key(b.cells[col],text);
if(text)return dir*x.localeCompare(y);
var nx=isNaN(x),ny=isNaN(y);if(nx||ny)return nx-ny;return dir*(x-y);});
list.forEach(function(r){body.appendChild(r);});});});});
window.addEventListener('load',function(){var ok=0,bad=0;
document.querySelectorAll('img').forEach(function(im){if(im===lbi)return;
if(im.complete&&im.naturalWidth>0)ok++;else bad++;});
document.body.setAttribute('data-images-ok',ok);document.body.setAttribute('data-images-bad',bad);});
document.body.setAttribute('data-js','ok');
})();
"""


def render_html(
    results: Mapping[str, Any],
    images: Sequence[ReportImage],
    metric_facts: Iterable[FactLike],
    *,
    ssim_window: str,
    title: str = "Inpainting evaluation",
    seed: int = 0,
    per_section: int = 4,
    thumb_size: int = 256,
    full_size: int = 1024,
    jpeg_quality: int = 70,
    rank_metric: str = "l1",
) -> str:
    """The report as one HTML string; see :func:`write_html_report` for the arguments."""
    facts, keys, rank = _facts_keys_rank(results, images, metric_facts, rank_metric)
    methods = [m["name"] for m in results["methods"]]

    sections = select_images(images, methods, rank, per_section, seed) if keys else []
    sizes = (thumb_size, full_size, jpeg_quality)
    ordered = sorted(images, key=lambda im: im.name)
    rows = {id(im): f"row-{i}" for i, im in enumerate(ordered)}
    anchors: dict[int, str] = {}  # id(image) -> its strip's id; each image is inlined once
    parts_strips = [
        part
        for heading, chosen in sections
        for part in (
            f"<h3>{esc(heading)}</h3>",
            *(
                _strip_or_link(im, anchors, rows, methods, keys, facts, rank, sizes)
                for im in chosen
            ),
        )
    ]
    notes = _page_notes(results, ssim_window)
    n_images = len(images)
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">{len(methods)} methods · {n_images} images · {" · ".join(notes)}</p>',
        '<nav><a href="#s-table">Table I</a><a href="#s-charts">Charts</a>'
        '<a href="#s-strips">Images</a><a href="#s-per-image">Per image</a></nav>',
        # Table I and the charts side by side on a wide screen, one above the other otherwise.
        '<div class="top"><section>',
        '<h2 id="s-table">Table I: hole metrics</h2>',
        _table_one(results, keys, facts),
        f'<p class="mu">Best of each row in <b style="color:var(--best)">bold green</b>. '
        f"SSIM window: {esc(ssim_window)}.{_confidence_note(results)}</p>",
        '</section><section class="grow">',
        '<h2 id="s-charts">Metric vs hole ratio</h2>',
        legend(results),
        '<div class="charts">' + "".join(chart(k, facts[k], results) for k in keys) + "</div>",
        "</section></div>",
        '<h2 id="s-strips">Images</h2>',
        '<p class="mu">masked input | '
        + " | ".join(esc(m) for m in methods)
        + " | ground truth. Click a picture to enlarge it; ← → step through the strip.</p>",
        "".join(parts_strips) if parts_strips else '<p class="mu">No per-image records.</p>',
        '<h2 id="s-per-image">Per image</h2>',
        '<p class="mu">Click a column header to sort (again to reverse); best per row and '
        "metric in green.</p>",
        '<div class="scroll">'
        + _image_table(ordered, rows, methods, keys, facts, anchors)
        + "</div>"
        if images
        else '<p class="mu">No per-image records.</p>',
        '<div id="lb"><img alt=""><div></div></div>',
    ]
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n"
        "<body>\n" + "\n".join(body) + f"\n<script>{JS}</script>\n</body></html>\n"
    )


def _facts_keys_rank(
    results: Mapping[str, Any],
    images: Sequence[ReportImage],
    metric_facts: Iterable[FactLike],
    rank_metric: str,
) -> tuple[dict[str, MetricFact], list[str], MetricFact]:
    """Every key's fact (a key without one: labelled with the key, lower is better), the keys
    shown, and the fact of the metric that ranks images (the first key if ``rank_metric`` is
    not there)."""
    facts = _as_facts(metric_facts)
    keys = _metric_keys(results, images)
    for key in keys:
        facts.setdefault(key, MetricFact(key, key, False))
    if rank_metric in facts:
        return facts, keys, facts[rank_metric]
    if keys:
        return facts, keys, facts[keys[0]]
    return facts, keys, MetricFact(rank_metric, rank_metric, False)


def _strip_or_link(
    image: ReportImage,
    anchors: dict[int, str],
    rows: Mapping[int, str],
    methods: Sequence[str],
    keys: Sequence[str],
    facts: Mapping[str, MetricFact],
    rank: MetricFact,
    sizes: tuple[int, int, int],
) -> str:
    """An image's strip, or a link to it when an earlier section showed it (``anchors``)."""
    if id(image) in anchors:  # a link, not a second copy of the pictures
        return (
            f'<div class="strip dup"><a href="#{anchors[id(image)]}" class="nm">'
            f'{esc(image.name)}</a> <span class="mu">shown above · '
            f"{_numbers_all(image, methods, rank)}</span></div>"
        )
    anchor = anchors[id(image)] = f"img-{len(anchors)}"
    shown = tiles(image, methods, *sizes)
    return _strip(image, anchor, rows[id(image)], shown, methods, keys, facts)


def _confidence_note(results: Mapping[str, Any]) -> str:
    """What ± and the marks mean (empty when the table has neither)."""
    note = ""
    if any(m.get("runs", 1) > 1 for m in results["methods"]):
        note += (
            " ±: half-width of the 95% Student-t interval of the mean over runs (error bars "
            "on the charts)."
        )
    if results.get("comparisons"):
        note += (
            f" {MARKS['better']} / {MARKS['worse']}: significantly better / worse than "
            f"{esc(results['baseline'])} (95% paired bootstrap over images)."
        )
    return note


def _page_notes(results: Mapping[str, Any], ssim_window: str) -> list[str]:
    """The SSIM window, and the exact holes (hole PSNR capped at 100 dB) when there are any."""
    counts = [(m["name"], m.get("psnr_infinite")) for m in results["methods"]]
    exact = ", ".join(f"{esc(name)} {n}" for name, n in counts if n)
    notes = [f"SSIM window: {esc(ssim_window)}"]
    if exact:
        notes.append(f"hole PSNR capped at 100 dB; exact holes: {exact}")
    return notes


def _numbers_all(image: ReportImage, methods: Sequence[str], rank: MetricFact) -> str:
    label = esc(short_label(rank.label))
    return ", ".join(f"{esc(m)} {label} {fmt_value(value_of(image, m, rank.key))}" for m in methods)


def write_html_report(
    path: str | os.PathLike[str],
    results: Mapping[str, Any],
    images: Sequence[ReportImage],
    metric_facts: Iterable[FactLike],
    *,
    ssim_window: str,
    title: str = "Inpainting evaluation",
    seed: int = 0,
    per_section: int = 4,
    thumb_size: int = 256,
    full_size: int = 1024,
    jpeg_quality: int = 70,
    rank_metric: str = "l1",
) -> Path:
    """Write the self-contained HTML report to ``path`` atomically and return ``path``.

    Args:
        path: the ``.html`` file to write (its folder is created).
        results: the Table I structure of :func:`wmi.eval.metrics.summarize` (metric keys may
            include new ones such as ``lpips`` and ``fid``; every key present is shown, in
            order of first appearance).
        images: one record per evaluated image (may be empty: then no strips and no
            per-image table).
        metric_facts: label and direction per key, as :class:`MetricFact` or
            ``(key, label, higher_is_better)`` tuples (:func:`facts_from_registry` gives the
            registry's). A key without a fact is labelled with the key, lower is better.
        ssim_window: which SSIM was computed ("gaussian 11x11 σ=1.5"), printed in the report.
        title: the page title and heading.
        seed: the seed of the random sample of images.
        per_section: images per strip section (differ most, each method's worst and best,
            random sample).
        thumb_size: long side of the inlined thumbnails, pixels (never enlarged).
        full_size: long side of the copy the lightbox shows; inlined only when larger than
            the thumbnail (0: the lightbox enlarges the thumbnail).
        jpeg_quality: JPEG quality of the inlined pictures.
        rank_metric: the metric that ranks images for the strips (falls back to the first key).

    Unreadable image files do not fail the report: their tile reads "unreadable" and names the
    error on hover.
    """
    path = Path(path)
    text = render_html(
        results,
        images,
        metric_facts,
        ssim_window=ssim_window,
        title=title,
        seed=seed,
        per_section=per_section,
        thumb_size=thumb_size,
        full_size=full_size,
        jpeg_quality=jpeg_quality,
        rank_metric=rank_metric,
    )
    with atomic_path(path) as tmp:
        tmp.write_text(printable(text, controls=False), encoding="utf-8")  # non-UTF-8 names
    return path
