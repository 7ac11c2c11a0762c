"""The decision report files: plots, markdown and HTML; byte-identical reruns; a real browser."""

from __future__ import annotations

import os
import re
import struct
import subprocess
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from quantmatrix.analysis.variant_model import VariantSummary
from quantmatrix.decision.build import decide
from quantmatrix.decision.model import Policy
from quantmatrix.report.decision_files import write_decision_outputs
from quantmatrix.report.plot_kit import MODEL_COLORS, TIER_COLORS
from quantmatrix.report.plots import PLOTS
from tests.helpers import ladder

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROBE = """<script>
// reports on the top page's body (the page itself, or the page holding it in a frame)
window.addEventListener('error', function (e) {
  window.top.document.body.setAttribute(
    'data-error', String(e.message || (e.target && e.target.id)));
}, true);
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'), ok = 0, b = window.top.document.body;
  imgs.forEach(function (im) { if (im.complete && im.naturalWidth > 0) { ok++; } });
  b.setAttribute('data-plots-loaded', ok + '/' + imgs.length);
  b.setAttribute('data-inner-width', String(window.innerWidth));
  b.setAttribute('data-scroll-width', String(document.documentElement.scrollWidth));
  var first = document.querySelector('ul.answer > li');
  b.setAttribute('data-answer-bottom', first ? String(first.getBoundingClientRect().bottom) : '');
});
</script>
"""
DESKTOP, PHONE, SCREEN_HEIGHT = 1280, 390, 844
# headless Chromium keeps its window at least 500 pixels wide: a phone is a 390-pixel frame
# (``srcdoc``, so the probe in it may write to the page around it) in a wider window
WINDOW_MIN = 600


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    run = tmp_path_factory.mktemp("decision")
    return run, write_decision_outputs(run, decide(ladder(), Policy(basis="point")))


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, out = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return out


def test_outputs_are_byte_identical_on_rerun(
    outputs: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    run, first = outputs
    again = write_decision_outputs(tmp_path, decide(ladder(), Policy(basis="point")))
    assert again["markdown"] == first["markdown"]
    assert Path(again["html"]).read_bytes() == Path(first["html"]).read_bytes()
    for name in PLOTS:
        a, b = Path(first[f"plot:{name}"]), Path(again[f"plot:{name}"])
        assert a.parent == run / "plots" and a.read_bytes() == b.read_bytes(), name


def test_pngs_carry_no_software_or_date(outputs: tuple[Path, dict[str, str]]) -> None:
    for name in PLOTS:
        chunks = png_chunks(Path(outputs[1][f"plot:{name}"]).read_bytes())
        kinds = {k for k, _ in chunks}
        assert b"tIME" not in kinds and b"IDAT" in kinds
        text = b" ".join(v for k, v in chunks if k in (b"tEXt", b"iTXt", b"zTXt"))
        assert b"Software" not in text and b"Creation" not in text


def test_markdown_sections_and_plot_links(outputs: tuple[Path, dict[str, str]]) -> None:
    md = outputs[1]["markdown"]
    heads = re.findall(r"^## (.+)$", md, flags=re.M)
    assert heads[0] == "Decision: executive summary" and heads[-1] == "Plots"
    for section in (
        "Decision matrix per memory budget",
        "Not recommended",
        "Tier counts",
        "All variants",
        "Quality cliffs",
        "MMLU vs ARC (delta vs baseline, pp)",
        "Memory: measured vs estimated",
    ):
        assert section in heads
    assert "- On 2 GB, run big@Q4_K_M" in md
    for name in PLOTS:
        assert f"](plots/{name}.png)" in md


def test_html_is_self_contained(outputs: tuple[Path, dict[str, str]]) -> None:
    html = Path(outputs[1]["html"]).read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(PLOTS)
    assert not re.search(r"""(src|href)=["'](?!data:)""", html)
    assert "http://" not in html and "https://" not in html
    assert "<td>big@Q2_K</td>" in html


def chromium() -> str:
    """The browser; missing, the test fails in CI (.ci/run installs it) and skips elsewhere."""
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    message = f"{CHROMIUM} is not installed (apt-get install -y chromium; .ci/run does)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}: the report's browser test must run in CI")
    pytest.skip(message)


def _chromium(
    args: list[str], tmp: Path, width: int, height: int
) -> subprocess.CompletedProcess[str]:
    profile = tmp / f"profile-{width}-{len(list(tmp.iterdir()))}"
    cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    cmd += [f"--window-size={width},{height}", "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def framed(html: str, width: int, height: int) -> str:
    """``html`` in a ``width`` x ``height`` frame at the top left of an empty page."""
    style = f"border:0;width:{width}px;height:{height}px;display:block"
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
        f'<iframe style="{style}" srcdoc="{escape(html, quote=True)}"></iframe></body></html>'
    )


def _page(html: str, tmp: Path, width: int, name: str) -> tuple[Path, int]:
    """The page to open for a ``width``-pixel viewport, and the window width to open it at."""
    page = tmp / f"{name}-{width}.html"
    if width >= WINDOW_MIN:
        page.write_text(html, encoding="utf-8")
        return page, width
    page.write_text(framed(html, width, SCREEN_HEIGHT), encoding="utf-8")
    return page, WINDOW_MIN


def _attributes(html: str, tmp: Path, width: int) -> dict[str, str]:
    """The probe's findings on the page laid out ``width`` pixels wide."""
    probe, window = _page(html.replace("</body>", PROBE + "</body>"), tmp, width, "probe")
    dom = _chromium(["--dump-dom", probe.as_uri()], tmp, window, SCREEN_HEIGHT)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body is not None, dom.stdout[:2000]
    return dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', body.group(1)))


def _shot(html: str, tmp: Path, width: int, height: int) -> Any:
    """A screenshot of ``html`` in a ``width`` x ``height`` viewport, as pixels."""
    page, window = _page(html, tmp, width, "shot")
    shot = tmp / f"shot-{width}.png"
    res = _chromium([f"--screenshot={shot}", page.as_uri()], tmp, window, height)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    pixels: Any = imread(shot)[..., :3]
    assert pixels.shape[:2] == (height, window)
    pixels = pixels[:, :width]
    assert pixels.std() > 0.05  # not a blank page
    return pixels


def _gallery(html: str) -> str:
    """The report's plots alone, side by side, for their colours."""
    imgs = re.findall(r"<img [^>]*>", html)
    style = "img{width:620px;margin:4px;border:1px solid #ccc}"
    head = f"<!DOCTYPE html><html><head><style>{style}</style></head>"
    return f"{head}<body>{''.join(imgs)}</body></html>"


def _painted(pixels: Any, rgb: str) -> int:
    want = np.array([int(rgb[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    return int((np.abs(pixels - want).max(axis=-1) < 0.03).sum())


def test_report_html_in_headless_chromium_at_desktop_and_phone_widths(
    three_models: Path, tmp_path: Path
) -> None:
    html = (three_models / "report.html").read_text(encoding="utf-8")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    for width in (DESKTOP, PHONE):
        found = _attributes(html, tmp_path, width)
        assert "data-error" not in found
        assert found["data-plots-loaded"] == f"{len(PLOTS)}/{len(PLOTS)}"
        assert int(found["data-inner-width"]) == width
        # no horizontal overflow: wide tables scroll inside their own box
        assert int(found["data-scroll-width"]) <= width, (width, found)
        # the first budget's answer is on the first screen
        assert 0 < float(found["data-answer-bottom"]) < SCREEN_HEIGHT, (width, found)
        pixels = _shot(html, tmp_path, width, SCREEN_HEIGHT)
        assert _painted(pixels, "#222222") > 500  # the answer's text was painted
    pixels = _shot(_gallery(html), tmp_path, DESKTOP, 1400)
    assert _painted(pixels, TIER_COLORS["negligible"]) > 50  # the tier colours
    assert _painted(pixels, MODEL_COLORS[1]) > 50  # the second model's colour (frontier)


def test_batched_speed_figures_are_said_to_be_batched_and_kept_in_the_summary() -> None:
    from quantmatrix.report.render import batch_note
    from tests import helpers

    def with_batch(v: VariantSummary, n: int | None) -> VariantSummary:
        return v if n is None else v.model_copy(update={"batch_size": n})

    def report(sizes: tuple[int | None, int | None]) -> str:
        base = with_batch(helpers.variant("m", "F16", 0.6, baseline=True), sizes[0])
        low = with_batch(helpers.variant("m", "Q4_K_M", 0.58), sizes[1])
        return "\n".join(batch_note(helpers.analysis([base, low])))

    assert "Speed figures are batched" not in report((None, None))  # servers, older logs
    assert "Speed figures are batched" not in report((1, 1))  # single-stream
    text = report((4, 4))
    assert "decoded 4 requests together" in text and "`batch_size: 1`" in text
    dumped = with_batch(helpers.variant("m", "F16", 0.6), 4).json_dict()
    assert dumped["batch_size"] == 4
    assert "batch_size" not in helpers.variant("m", "F16", 0.6).json_dict()
