"""Next-token distributions from a loaded ``llama_cpp.Llama`` (opened by the caller, e.g. with
``engine.load.open_for_eval``): option-letter probabilities for
multiple choice, and full-vocabulary rows for the token-level KL on a text corpus.

Prompt logprobs through ``create_completion(echo=True)`` are wrong in llama-cpp-python 0.3.36,
so everything here runs ``llm.reset(); llm.eval(tokens)`` and applies its own float64
log-softmax to the raw logits.

Prompt tokens are exactly the ones the embedded backend sends: for chat models the GGUF's own
chat template (the formatter llama-cpp-python itself picked, with the generation prompt added),
tokenized with special tokens parsed; for base models BOS (when the vocabulary adds one) and the
raw prompt.

Option letters: the probability of letter L is the summed probability of every single-token
surface form of L in {"L", " L"}. After a chat template's "<|im_start|>assistant\\n" the model
answers with "A" (no space); after a raw "Answer:" it answers " A"; both SmolLM2 and Qwen2.5 have
both forms as single tokens (SmolLM2: "A"=49, " A"=330; Qwen2.5: "A"=32, " A"=362). Forms such as
"(A" (a Qwen2.5 token) or "**" are not counted; ``letter_mass`` (the summed probability of all
option letters) says how much of the next-token mass the letters hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from quantmatrix.data.benchmarks import MCItem
from quantmatrix.scoring.divergence import log_softmax

LETTER_FORMS = ("{}", " {}")


def bos_tokens(llm: Any) -> list[int]:
    """[BOS] when the model's vocabulary adds one, else []."""
    return [llm.token_bos()] if llm._model.add_bos_token() and llm.token_bos() != -1 else []


def letter_token_ids(llm: Any, n_letters: int) -> list[tuple[int, ...]]:
    """Per option letter, the ids of its single-token forms ("A" and " A")."""
    out: list[tuple[int, ...]] = []
    for i in range(n_letters):
        letter = chr(ord("A") + i)
        ids: list[int] = []
        for form in LETTER_FORMS:
            toks = llm.tokenize(form.format(letter).encode(), add_bos=False, special=False)
            if len(toks) == 1 and toks[0] not in ids:
                ids.append(int(toks[0]))
        if not ids:
            raise ValueError(f"the tokenizer has no single token for option letter {letter}")
        out.append(tuple(ids))
    return out


def _token_text(llm: Any, token: int) -> str:
    # the same call llama-cpp-python makes for its chat formatter's bos/eos strings
    return "" if token == -1 else str(llm._model.token_get_text(token))


def chat_formatter(llm: Any) -> Any:
    """The chat formatter ``create_chat_completion`` uses for ``llm`` (a Jinja template is
    compiled here: keep it, as :func:`chat_prompt` takes it, when formatting many prompts)."""
    from llama_cpp import llama_chat_format as fmt

    name = str(llm.chat_format or "")
    if llm.chat_handler is not None:
        raise ValueError("a custom chat handler is set; its prompt tokens are not reproducible")
    if name.startswith("chat_template."):
        key = name[len("chat_template.") :]
        template = llm.metadata.get(
            "tokenizer.chat_template" if key == "default" else f"tokenizer.chat_template.{key}"
        )
        return fmt.Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(llm, llm.token_eos()),
            bos_token=_token_text(llm, llm.token_bos()),
            add_generation_prompt=True,
        )
    builtin = {
        "chatml": fmt.format_chatml,
        "llama-3": fmt.format_llama3,
        "mistral-instruct": fmt.format_mistral_instruct,
        "llama-2": fmt.format_llama2,
    }
    if name not in builtin:
        raise ValueError(f"chat format {name!r} is not supported for letter probabilities")
    return builtin[name]


def chat_prompt(
    llm: Any, messages: list[dict[str, str]], formatter: Any = None
) -> tuple[list[int], list[str]]:
    """The tokens and the stop strings ``create_chat_completion`` uses for ``messages``
    (``formatter``: :func:`chat_formatter`'s for ``llm``, made here when not given)."""
    result = (formatter or chat_formatter(llm))(messages=messages)
    tokens = llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special,
                          special=True)  # fmt: skip
    stop = result.stop if isinstance(result.stop, list) else [result.stop]
    return list(tokens), [s for s in stop if isinstance(s, str)]


def prompt_tokens(llm: Any, prompt: str, chat: bool) -> list[int]:
    """The tokens ``create_chat_completion`` (chat) or ``create_completion`` would evaluate."""
    if chat:
        return chat_prompt(llm, [{"role": "user", "content": prompt}])[0]
    body = list(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))
    eos = [llm.token_eos()] if llm._model.add_eos_token() else []
    return bos_tokens(llm) + body + eos


def _eval(llm: Any, tokens: Sequence[int]) -> None:
    if not tokens:
        raise ValueError("no tokens to evaluate")
    if len(tokens) > llm.n_ctx():
        raise ValueError(f"{len(tokens)} tokens exceed the context of {llm.n_ctx()}")
    llm.reset()
    llm.eval(list(tokens))


def _last_logits(llm: Any) -> npt.NDArray[np.float32]:
    if getattr(llm, "_logits_all", False):
        return np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32)
    import llama_cpp

    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float32)


def letter_probs(
    llm: Any, tokens: Sequence[int], letter_ids: Sequence[Sequence[int]]
) -> npt.NDArray[np.float64]:
    """Probability of each option letter as the next token after ``tokens`` (one forward pass).

    Works with ``logits_all=True`` (last row of ``llm.scores``) and without it (llama.cpp's
    last-token logits, cheaper: the output layer runs once instead of once per prompt token).
    """
    _eval(llm, tokens)
    return letter_probs_from_logits(_last_logits(llm), letter_ids)


def letter_probs_from_logits(
    logits: npt.NDArray[np.floating[Any]], letter_ids: Sequence[Sequence[int]]
) -> npt.NDArray[np.float64]:
    """Per option letter, the summed probability of its token forms, from one logits row."""
    logp = log_softmax(logits)
    return np.array([np.exp(special.logsumexp(logp[list(ids)])) for ids in letter_ids])


def token_logits(llm: Any, tokens: Sequence[int]) -> npt.NDArray[np.float32]:
    """Raw logits (n, vocab) for every position of ``tokens``; needs ``logits_all=True``."""
    if not getattr(llm, "_logits_all", False):
        raise ValueError("token_logits needs a Llama created with logits_all=True")
    _eval(llm, tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def corpus_text(items: Sequence[MCItem], corpus_path: Path | None = None) -> str:
    """The corpus: a local text file, or the items' questions with their lettered options."""
    if corpus_path is not None:
        return corpus_path.read_text(encoding="utf-8")
    blocks = []
    for item in items:
        options = "\n".join(f"{chr(ord('A') + i)}. {c}" for i, c in enumerate(item.choices))
        blocks.append(f"{item.question.strip()}\n{options}")
    return "\n\n".join(blocks)


def corpus_chunks(llm: Any, text: str, max_tokens: int, chunk_tokens: int) -> list[list[int]]:
    """Tokenize (no special tokens), cap at ``max_tokens``, cut into chunks; each chunk
    starts with BOS when the model's vocabulary adds one."""
    body = list(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
    body = body[:max_tokens]
    bos = bos_tokens(llm)
    step = chunk_tokens - len(bos)
    chunks = [bos + body[i : i + step] for i in range(0, len(body), step)]
    return [c for c in chunks if len(c) >= 2]


def corpus_digest(chunks: Sequence[Sequence[int]]) -> str:
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(np.asarray(chunk, dtype=np.int32).tobytes() + b"|")
    return digest.hexdigest()
