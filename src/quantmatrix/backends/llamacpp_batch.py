"""Several requests decoded together: sequences of one llama.cpp context, greedy per sequence.

A :class:`BatchDecoder` is a second llama.cpp context on the model already loaded (the same
weights, the same context settings as the single-stream one) with ``n_seq`` sequences and one
more for the shared prompt prefix, in one unified KV cache. One group of requests is decoded as:

1. the KV cache is cleared, so a group never depends on what ran before it;
2. the group's shared prefix (the longest common prefix of its prompt tokens: chat template
   head, system text, the task's instructions) is evaluated once into the prefix sequence and
   shared with every sequence (``llama_memory_seq_cp``: the cells are shared, not copied). A
   prefix already evaluated for this variant is restored from its saved state instead
   (``llama_state_seq_set_data``), which gives the same cells and the same values as
   evaluating it again from an empty cache;
3. every sequence's remaining prompt tokens go in one batch; then each step decodes one token
   for every sequence still running, until each has stopped on its own stop strings, line stop
   or token budget. The next token is the argmax of that sequence's logits (what
   llama-cpp-python's greedy sampler picks: the first highest logit); a multiple-choice
   request's letter probabilities come from its own first logits row.

Timing: each llama_decode call is timed (synchronised) and its time split over the sequences
it carried by their token count in it: the prefix equally over the group, the prompt batch by
prompt tokens, each step equally over the running sequences. The group's time outside
llama.cpp (sampling, detokenizing) is split equally. So a group's ``wall_s`` add up to its real
wall time and its decode times to the engine's real decode time: ``decode_tps`` is the
aggregate throughput, the figure that cost per token needs. ``ttft_s`` is a latency: from the
group's start to the sequence's first token.
"""

from __future__ import annotations

import ctypes
import time
from collections import Counter, OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from quantmatrix.backends.base import BackendError
from quantmatrix.backends.llamacpp_seq import SeqState, common_prefix

# (sequence, token, position, wants logits)
Entry = tuple[int, int, int, bool]
SAVED_PREFIXES = 8  # prefix states kept per variant (a few per task at most)
SLACK_TOKENS = 8  # llama-cpp-python's multibyte check may run a sequence a few tokens past


class BatchDecoder:
    """``n_seq`` sequences (+ one for the prefix) on the model ``llm`` has loaded."""

    def __init__(self, llm: Any, n_seq: int, context_length: int) -> None:
        import llama_cpp

        self._lib = llama_cpp
        source = llm.context_params
        params = type(source).from_buffer_copy(source)
        params.n_seq_max = n_seq + 1
        params.kv_unified = True
        params.n_ctx = n_seq * (context_length + SLACK_TOKENS)
        from llama_cpp._utils import suppress_stdout_stderr

        # quiet as ``Llama(verbose=False)``: llama.cpp warns that the unified cache (all
        # sequences together) is larger than the context the model was trained for
        with suppress_stdout_stderr(disable=False):
            self.ctx = llama_cpp.llama_init_from_model(llm._model.model, params)
        if not self.ctx:
            raise BackendError(
                f"llama.cpp could not create a context of {n_seq} sequences of {context_length} "
                "tokens; lower batch_size or context_length in the study"
            )
        self.n_seq, self.prefix_seq = n_seq, n_seq
        self.n_batch = max(int(params.n_batch), n_seq)
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.vocab = llm._model.vocab
        self.n_vocab = int(llm.n_vocab())
        self._detokenize = llm.detokenize
        self._saved: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    # -- one group ----------------------------------------------------------------------------

    def run(self, seqs: Sequence[SeqState]) -> float:
        """Decode ``seqs`` to their ends (at most ``n_seq``); return the group's wall time."""
        assert 0 < len(seqs) <= self.n_seq
        started = time.perf_counter()
        self._lib.llama_memory_clear(self.memory, True)
        # one sequence alone is evaluated as the single-stream path does: its whole prompt
        prefix = common_prefix([s.prompt for s in seqs]) if len(seqs) > 1 else []
        prefix_s = self._prefix(tuple(prefix))
        for i, seq in enumerate(seqs):
            seq.prompt_s += prefix_s / len(seqs)
            if prefix:
                self._lib.llama_memory_seq_cp(self.memory, self.prefix_seq, i, -1, -1)
        self._prompts(seqs, len(prefix), started)
        while live := [i for i, s in enumerate(seqs) if s.active]:
            entries = [(i, seqs[i].tokens[-1], seqs[i].position, True) for i in live]
            elapsed = self._decode(entries)
            for j, i in enumerate(live):
                seqs[i].decode_s += elapsed / len(live)
                seqs[i].decode_tokens += 1
                self._sample(seqs[i], j)
        return time.perf_counter() - started

    def _prefix(self, prefix: tuple[int, ...]) -> float:
        """Put ``prefix`` into the prefix sequence (evaluated, or restored); return the time."""
        if not prefix:
            return 0.0
        started = time.perf_counter()
        lib, seq = self._lib, self.prefix_seq
        saved = self._saved.get(prefix)
        if saved is not None:
            if lib.llama_state_seq_set_data(self.ctx, saved, len(saved), seq) == 0:
                raise BackendError("llama.cpp could not restore a saved prompt prefix")
            self._saved.move_to_end(prefix)
            return time.perf_counter() - started
        entries = [(seq, tok, pos, False) for pos, tok in enumerate(prefix)]
        for k in range(0, len(entries), self.n_batch):
            self._decode(entries[k : k + self.n_batch])
        size = lib.llama_state_seq_get_size(self.ctx, seq)
        buffer = (ctypes.c_uint8 * size)()
        lib.llama_state_seq_get_data(self.ctx, buffer, size, seq)
        self._saved[prefix] = buffer
        if len(self._saved) > SAVED_PREFIXES:
            self._saved.popitem(last=False)
        return time.perf_counter() - started

    def _prompts(self, seqs: Sequence[SeqState], start: int, started: float) -> None:
        """Every sequence's prompt after the prefix, in batches of at most ``n_batch`` tokens;
        each sequence samples its first token from its last prompt token's logits."""
        entries = [
            (i, tok, pos, pos == len(s.prompt) - 1)
            for i, s in enumerate(seqs)
            for pos, tok in enumerate(s.prompt[start:], start=start)
        ]
        for k in range(0, len(entries), self.n_batch):
            chunk = entries[k : k + self.n_batch]
            elapsed = self._decode(chunk)
            for i, count in Counter(e[0] for e in chunk).items():
                seqs[i].prompt_s += elapsed * count / len(chunk)
            for j, (i, _, _, last) in enumerate(chunk):
                if last:
                    self._sample(seqs[i], j)
                    seqs[i].ttft_s = time.perf_counter() - started

    # -- llama.cpp ----------------------------------------------------------------------------

    def _decode(self, entries: Sequence[Entry]) -> float:
        batch = self.batch
        batch.n_tokens = len(entries)
        for j, (seq, token, pos, logits) in enumerate(entries):
            batch.token[j], batch.pos[j], batch.logits[j] = token, pos, logits
            batch.n_seq_id[j] = 1
            batch.seq_id[j][0] = seq
        if not any(e[3] for e in entries):
            batch.logits[len(entries) - 1] = True  # llama.cpp outputs the last token by default
        started = time.perf_counter()
        code = self._lib.llama_decode(self.ctx, batch)
        self._lib.llama_synchronize(self.ctx)
        if code != 0:
            raise BackendError(
                f"llama.cpp could not decode a batch of {len(entries)} tokens (code {code}); "
                "lower batch_size or context_length in the study"
            )
        return time.perf_counter() - started

    def _sample(self, seq: SeqState, index: int) -> None:
        pointer = self._lib.llama_get_logits_ith(self.ctx, index)
        row = np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        if seq.sampled == 0 and seq.request.letter_count > 0:
            seq.first_logits = row.copy()
        token = int(np.argmax(row))
        eog = bool(self._lib.llama_vocab_is_eog(self.vocab, token))
        seq.accept(token, eog, self._detokenize)

    def close(self) -> None:
        if self.ctx:
            self._lib.llama_batch_free(self.batch)
            self._lib.llama_free(self.ctx)
            self.ctx = None
