"""The report layer: tables with the right numbers, escaping, embedded figures, determinism, bad input,
and the page as a real browser renders it (headless Chromium, skipped when it is not installed)."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from parry.evaluate import plots
from parry.evaluate.report import markdown_escape, render_html, render_leaderboard, render_markdown, write_report
from parry.evaluate.report_data import (AttackRow, Gallery, ModelRow, Provenance, ReportData, RobustnessCurve,
                                        TransferMatrix)
from parry.metrics import wilson_interval

EVIL = '<script>alert("x")</script> | evil'
DATA_URI = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _model(name: str = "pgd-at", robust: float = 0.874, clean: float = 0.987, **kw) -> ModelRow:
    args = dict(name=name, dataset="mnist", clean_accuracy=clean, robust_accuracy=robust, n=1000, seed=7,
                norm="linf", eps=0.3, ensemble="autoattack-standard", checkpoint_sha256="0123456789abcdef" * 4)
    return ModelRow(**{**args, **kw})


def _gallery(n: int = 6, channels: int = 1) -> Gallery:
    rng = np.random.default_rng(0)
    clean = rng.random((n, channels, 28, 28), dtype=np.float32)
    adv = np.clip(clean + rng.uniform(-0.3, 0.3, clean.shape).astype(np.float32), 0, 1)
    labels = list(range(n))
    return Gallery(clean, adv, labels, labels, [(y + 1) % 10 for y in labels], class_names=[f"c{i}" for i in range(10)])


def _data(**kw) -> ReportData:
    models = [_model(), _model(EVIL, robust=0.5, clean=0.95, audit="fail: gradients vanish",
                               notes="<img src=x onerror=alert(1)>")]
    attacks = [AttackRow("apgd-ce", "steps=100, restarts=1", "linf", 0.3, 0.901, 0.087, 1000,
                         {"linf": 0.3, "l2": 4.25}, model="pgd-at"),
               AttackRow("apgd-t", "steps=100, n_target_classes=9", "linf", 0.3, 0.874, 0.114, 1000,
                         {"linf": 0.3, "l2": 4.5}, model="pgd-at"),
               AttackRow("square", "queries=5000", "linf", 0.3, 0.95, float("nan"), 1000, {"linf": float("nan")},
                         model=EVIL)]
    curves = [RobustnessCurve("pgd-at", "apgd-ce", "linf", [(0.3, 0.9), (0.0, 0.987), (0.1, 0.95)]),
              RobustnessCurve(EVIL, "pgd-10", "l2", [(0.0, 0.95), (2.0, 0.1)])]
    transfer = TransferMatrix(["pgd-at", EVIL], ["pgd-at", EVIL, "plain"],
                              [[1.0, 0.25, 0.6], [0.125, 0.9, float("nan")]], "pgd-40", "linf", 0.3)
    prov = Provenance("2026-11-25T10:00:00", {"parry": "0.1.0", "torch": "2.13.0", "cuda": None, "threads": 2}, ensemble="autoattack-standard",
                      ensemble_params="apgd-ce(steps=100), apgd-t(steps=100, targets=9)",
                      settings={"device": "cpu", "selection": "spread"})
    args = dict(title="MNIST robustness", models=models, provenance=prov, attacks=attacks, curves=curves,
                transfer=transfer, gallery=_gallery())
    return ReportData(**{**args, **kw})


@pytest.fixture(scope="module")
def data() -> ReportData:
    return _data()


@pytest.fixture(scope="module")
def html(data: ReportData) -> str:
    return render_html(data)


@pytest.fixture(scope="module")
def markdown(data: ReportData) -> str:
    return render_markdown(data)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


# ------------------------------------------------------------------------------------------------- tables

def test_model_table_has_the_numbers(html: str, markdown: str) -> None:
    lo, hi = wilson_interval(874, 1000)
    assert "87.40" in html and f"[{_pct(lo)}-{_pct(hi)}]" in html
    assert "12.60" in html and "1.30" in html                      # robust and clean error rates
    assert "0123456789ab" in html and "0123456789abcdef0" not in html  # 12-digit checkpoint prefix
    row = next(line for line in markdown.splitlines() if line.startswith("| pgd-at |"))
    cells = [c.strip() for c in row.strip("|").split(" | ")]
    assert cells[:5] == ["pgd-at", "mnist", "0123456789ab", "linf eps 0.3", "autoattack-standard"]
    assert cells[5] == f"98.70 [{_pct(wilson_interval(987, 1000)[0])}-{_pct(wilson_interval(987, 1000)[1])}]"
    assert cells[7] == f"87.40 [{_pct(lo)}-{_pct(hi)}]" and cells[8] == "12.60" and cells[9:11] == ["1000", "7"]


def test_attack_table_and_worst_case(html: str, markdown: str) -> None:
    table = html[html.index('id="attack-table"'):]
    table = table[: table.index("</table>")]
    rows = re.findall(r"<tr( class=\"worst\")?>(.*?)</tr>", table, flags=re.S)[1:]
    worst = [body for flag, body in rows if flag]
    assert len(rows) == 3 and len(worst) == 2       # apgd-t is pgd-at's worst; square is alone in its group
    assert "apgd-t" in worst[0] and "n_target_classes=9" in worst[0] and "87.40" in worst[0]
    assert "n/a" in rows[2][1]                     # NaN success rate and median norm
    assert "| **apgd-t** |" in markdown and "**87.40**" in markdown
    assert "median linf" in markdown and "median l2" in markdown and "median l1" not in markdown


def test_curves_transfer_and_provenance(html: str, markdown: str) -> None:
    assert "0: 98.70; 0.1: 95.00; 0.3: 90.00" in html          # sorted by eps
    assert 'id="transfer-table"' in html and "12.50" in html and "25.00" in html
    assert "| pgd-at | 100.00 | 25.00 | 60.00 |" in markdown
    for text in ("2026-11-25T10:00:00", "apgd-ce(steps=100)", "torch 2.13.0", "cuda n/a", "threads 2", "selection",
                 "seed 7", "n = 1000"):
        assert text in html
    assert "torch 2.13.0" in markdown and "n = 1000, seed 7" in markdown


def test_leaderboard_groups_by_threat_model_and_sorts() -> None:
    rows = [_model("a", robust=0.5), _model("b", robust=0.7), _model("c", robust=0.7, clean=0.99),
            _model("l2-model", robust=0.9, norm="l2", eps=2.0, n=500)]
    page = render_leaderboard(rows, date="2026-11-25")
    assert page.index("mnist, l2 eps 2") < page.index("mnist, linf eps 0.3")
    linf = page[page.index("mnist, linf eps 0.3"):]
    names = re.findall(r'<td class="num">\d+</td><td>([^<]+)</td>', linf)
    assert names == ["c", "b", "a"]                                 # robust desc, then clean desc
    assert "l2 eps 2" in page and '<td class="num">500</td>' in page


# ----------------------------------------------------------------------------------------------- escaping

def test_html_escapes_user_strings(html: str) -> None:
    assert "<script" not in html.lower()                     # the page has no script at all
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; | evil" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in render_leaderboard([_model(EVIL)]).lower()


def test_markdown_cells_are_inert(markdown: str) -> None:
    assert "<script" not in markdown and "<img" not in markdown
    assert "&lt;script&gt;" in markdown and r"\| evil" in markdown
    header = next(line for line in markdown.splitlines() if line.startswith("| model | dataset |"))
    evil_row = next(line for line in markdown.splitlines() if line.startswith("| &lt;script"))
    unescaped_pipes = lambda line: len(re.findall(r"(?<!\\)\|", line))  # noqa: E731
    assert unescaped_pipes(evil_row) == unescaped_pipes(header)
    assert markdown_escape("a|b*c_[d](e)\nf`g") == r"a\|b\*c\_\[d\](e) f\`g"


# ------------------------------------------------------------------------------------------------ figures

def _pngs(page: str) -> list[bytes]:
    return [base64.b64decode(b64, validate=True) for b64 in DATA_URI.findall(page)]


def test_figures_are_embedded_pngs(html: str) -> None:
    images = _pngs(html)
    assert len(images) == 4                                      # bars, curves, heatmap, gallery
    for png in images:
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
        with Image.open(io.BytesIO(png)) as im:
            im.verify()
        with Image.open(io.BytesIO(png)) as im:
            pixels = np.asarray(im.convert("RGB"))
        assert pixels.shape[0] > 150 and pixels.shape[1] > 300
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20     # not a blank canvas
    # self-contained: no external resource, every src/href is a data URI
    assert not re.search(r'(?:src|href)\s*=\s*"(?!data:)', html)
    assert "<link" not in html and "http://" not in html and "https://" not in html


def test_figures_are_deterministic(data: ReportData, html: str) -> None:
    assert render_html(data) == html
    assert plots.plot_gallery(_gallery(3, 3)) == plots.plot_gallery(_gallery(3, 3))
    a = plots.plot_attack_bars(data.attacks)
    assert a != plots.plot_attack_bars(data.attacks[:2])           # and they do depend on the input


def test_optional_sections_are_left_out() -> None:
    page = render_html(_data(attacks=(), curves=(), transfer=None, gallery=None))
    assert 'id="model-table"' in page and "attack-table" not in page and not DATA_URI.search(page)
    assert "## Attacks" not in render_markdown(_data(attacks=()))


def test_gallery_accepts_tensors() -> None:
    g = _gallery(2)
    t = Gallery(torch.from_numpy(np.array(g.clean)), torch.from_numpy(np.array(g.adversarial)),
                torch.tensor([0, 1]), torch.tensor([0, 1]), np.array([1, 1]))
    assert t.clean.dtype == np.float32 and t.labels == (0, 1) and t.class_name(1) == "1"


def test_write_report(tmp_path: Path, data: ReportData) -> None:
    paths = write_report(data, tmp_path / "out", leaderboard_rows=[_model("other", robust=0.1)] + list(data.models))
    assert {p.name for p in (paths.index, paths.summary, paths.leaderboard)} == {"index.html", "summary.md",
                                                                                 "leaderboard.html"}
    assert paths.summary.read_text(encoding="utf-8") == render_markdown(data)
    assert "other" in paths.leaderboard.read_text(encoding="utf-8")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="out_dir"):
        write_report(data, tmp_path / "file")


# -------------------------------------------------------------------------------------------- bad input

_IMG = np.full((2, 1, 4, 4), 0.5, dtype=np.float32)


@pytest.mark.parametrize("make, error, match", [
    (lambda: _model(clean=1.2), ValueError, "clean_accuracy"),
    (lambda: _model(robust=float("nan")), ValueError, "robust_accuracy: is NaN"),
    (lambda: _model(norm="l3"), ValueError, "norm"),
    (lambda: _model(eps=-0.1), ValueError, "eps"),
    (lambda: _model(n=0), ValueError, "n: must be >= 1"),
    (lambda: _model(seed=1.5), TypeError, "seed"),
    (lambda: _model(checkpoint_sha256="not-hex"), ValueError, "checkpoint_sha256"),
    (lambda: _model(name=" "), ValueError, "name"),
    (lambda: AttackRow("pgd", "", "linf", 0.3, 0.5, 1.5, 10), ValueError, "success_rate"),
    (lambda: AttackRow("pgd", "", "linf", 0.3, 0.5, 0.5, 10, {"l7": 1.0}), ValueError, "median_norms"),
    (lambda: RobustnessCurve("m", "a", "linf", [(0.1, 0.5), (0.1, 0.4)]), ValueError, "each eps"),
    (lambda: RobustnessCurve("m", "a", "linf", [(0.1, 1.5)]), ValueError, "accuracy"),
    (lambda: TransferMatrix(["a"], ["a", "b"], [[0.5]], "pgd", "linf", 0.3), ValueError, "shape"),
    (lambda: TransferMatrix(["a"], ["b"], [[1.5]], "pgd", "linf", 0.3), ValueError, "success_rate"),
    (lambda: TransferMatrix(["a", "a"], ["b"], [[0.5], [0.5]], "pgd", "linf", 0.3), ValueError, "unique"),
    (lambda: Gallery(_IMG, _IMG[:1], [0, 1], [0, 1], [0, 1]), ValueError, "adversarial: shape"),
    (lambda: Gallery(_IMG * 3, _IMG, [0, 1], [0, 1], [0, 1]), ValueError, r"clean: values must lie in \[0, 1\]"),
    (lambda: Gallery(_IMG, np.full_like(_IMG, np.nan), [0, 1], [0, 1], [0, 1]), ValueError,
     "adversarial: contains NaN"),
    (lambda: Gallery(_IMG[:, 0], _IMG[:, 0], [0, 1], [0, 1], [0, 1]), ValueError, r"\(N, C, H, W\)"),
    (lambda: Gallery(_IMG.astype(np.uint8), _IMG, [0, 1], [0, 1], [0, 1]), TypeError, "floating-point"),
    (lambda: Gallery(_IMG, _IMG, [0], [0, 1], [0, 1]), ValueError, "labels: expected 2"),
    (lambda: Gallery(_IMG, _IMG, [0, 1], [0, 1], [0, 5], class_names=["a", "b"]), ValueError, "class_names"),
    (lambda: Gallery(np.zeros((40, 1, 2, 2), np.float32), np.zeros((40, 1, 2, 2), np.float32), [0] * 40,
                     [0] * 40, [0] * 40), ValueError, "1 to 32 images"),
    (lambda: _data(models=[]), ValueError, "models: need at least one"),
    (lambda: _data(attacks=["pgd"]), TypeError, r"attacks\[0\]"),
    (lambda: Provenance("", {}), ValueError, "date"),
    (lambda: Provenance("2026-11-25", {"torch": object()}), TypeError, r"versions\['torch'\]"),
    (lambda: render_html({"title": "x"}), TypeError, "data: expected a ReportData"),
    (lambda: render_leaderboard([]), ValueError, "rows"),
])
def test_bad_input_is_refused(make, error, match) -> None:
    with pytest.raises(error, match=match):
        make()


# ------------------------------------------------------------------------------------------ real browser

def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None,
                    reason="no chromium binary on PATH (Debian: apt-get install -y chromium; `make install` tries it)")
def test_page_renders_in_headless_chromium(tmp_path: Path, data: ReportData) -> None:
    paths = write_report(data, tmp_path / "report")
    url = paths.index.resolve().as_uri()
    shot = tmp_path / "shot.png"
    base = [_chromium(), "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}"]
    subprocess.run(base + [f"--screenshot={shot}", "--window-size=1280,2000", url],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size == (1280, 2000)
        pixels = np.asarray(im.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200           # text, tables and figures drawn
    assert (pixels < 128).all(axis=2).mean() > 0.005                      # some dark ink on the white page
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, timeout=120, check=True,
                         text=True).stdout
    for table in ("model-table", "attack-table", "curve-table", "transfer-table"):
        assert f'id="{table}"' in dom
    assert "<script" not in dom.lower() and "&lt;script&gt;" in dom
    assert len(DATA_URI.findall(dom)) == 4
