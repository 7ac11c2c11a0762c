"""The decision report files: plots, markdown and HTML; byte-identical reruns; a real browser."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread

from quantmatrix.analysis.variant_model import VariantSummary
from quantmatrix.decision.build import decide
from quantmatrix.decision.model import Policy
from quantmatrix.report.decision_files import write_decision_outputs
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
window.addEventListener('error', function (e) {
  document.body.setAttribute('data-error', String(e.message || (e.target && e.target.id)));
}, true);
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'), ok = 0;
  imgs.forEach(function (im) { if (im.complete && im.naturalWidth > 0) { ok++; } });
  document.body.setAttribute('data-plots-loaded', ok + '/' + imgs.length);
});
</script>
"""


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


def _chromium(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    cmd = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def _gallery(html: str) -> str:
    imgs = re.findall(r"<img [^>]*>", html)
    style = "img{width:620px;margin:4px;border:1px solid #ccc}"
    head = f"<!DOCTYPE html><html><head><style>{style}</style></head>"
    return f"{head}<body>{''.join(imgs)}</body></html>"


def test_html_opens_in_headless_chromium(
    outputs: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    html = Path(outputs[1]["html"]).read_text(encoding="utf-8")
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = _chromium(["--dump-dom", probe.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body is not None and "data-error" not in body.group(0)
    assert f'data-plots-loaded="{len(PLOTS)}/{len(PLOTS)}"' in body.group(0)
    gallery, shot = tmp_path / "gallery.html", tmp_path / "shot.png"
    gallery.write_text(_gallery(html), encoding="utf-8")
    res = _chromium(["--window-size=1280,1400", f"--screenshot={shot}", gallery.as_uri()], tmp_path)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    pixels: Any = imread(shot)[..., :3]
    assert pixels.std() > 0.05  # not a blank page
    green = np.abs(pixels - np.array([0x2E, 0x7D, 0x32]) / 255).max(axis=-1) < 0.03
    assert green.sum() > 50  # the tier colours of the plots were painted


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
