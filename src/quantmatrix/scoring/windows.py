"""Next-token rows of one long sequence, a window at a time (the long-context probe).

``logits.token_logits`` needs ``logits_all=True``, for which llama-cpp-python keeps a float32
array of context x vocabulary (8,192 x 151,936 for Qwen2.5: 5 GB). Here the sequence is
evaluated in windows of ``window`` tokens on one growing KV cache, every position's logits
requested, and each window's rows are handed over before the next is evaluated: memory is
one window's rows, and position ``p`` still sees every token before it. The windows are the
batches ``Llama.eval`` itself would decode (``n_batch`` tokens each), so the rows equal
``token_logits``' on a sequence that fits (the engine tests check it).

:class:`WindowModel` is what the probe needs of a model; :class:`LlamaWindows` is llama.cpp's,
``backends/fake_logits.py`` the scripted one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from quantmatrix.scoring.logits import bos_tokens

Rows = npt.NDArray[np.float32]


class WindowModel(Protocol):
    """A model the long-context probe can read next-token rows from."""

    def text_tokens(self, text: str) -> list[int]:
        """``text`` tokenized without special tokens (no BOS)."""
        ...

    def bos(self) -> list[int]:
        """What a sequence starts with: [BOS] when the vocabulary adds one, else []."""
        ...

    def context_limit(self) -> int:
        """The longest sequence the model was trained on (llama.cpp's ``n_ctx_train``)."""
        ...

    def windows(self, tokens: Sequence[int], window: int) -> Iterator[Rows]:
        """Raw logits rows (n, vocab) of consecutive windows of ``tokens``, in order, on one
        context started empty."""
        ...


class LlamaWindows:
    """A ``llama_cpp.Llama`` opened with ``n_batch`` = the window and ``n_ctx`` >= the longest
    sequence (``engine.load.open_for_eval`` with ``logits_all=False``)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm

    def text_tokens(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def bos(self) -> list[int]:
        return bos_tokens(self.llm)

    def context_limit(self) -> int:
        return int(self.llm._model.n_ctx_train())

    def windows(self, tokens: Sequence[int], window: int) -> Iterator[Rows]:
        llm = self.llm
        if window > llm.n_batch:
            raise ValueError(f"window {window} exceeds the context's batch of {llm.n_batch}")
        if len(tokens) > llm.n_ctx():
            raise ValueError(f"{len(tokens)} tokens exceed the context of {llm.n_ctx()}")
        llm.reset()
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)  # an empty cache, as Llama.eval starts from
        n_vocab = int(llm.n_vocab())
        for start in range(0, len(tokens), window):
            part = list(tokens[start : start + window])
            llm._batch.set_batch(batch=part, n_past=start, logits_all=True)
            llm._ctx.decode(llm._batch)
            flat = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(part) * n_vocab,))
            yield flat.reshape(len(part), n_vocab).copy()
        llm.reset()
