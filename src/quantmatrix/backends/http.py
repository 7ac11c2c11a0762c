"""Shared plumbing for the server backends (Ollama, OpenAI-compatible) on ``httpx``.

* :class:`ServerOptions`: what both server backends are configured with
  (:func:`server_options`: from a study's model spec).
* :class:`JsonClient`: JSON over HTTP with bounded retries and exponential backoff for the
  faults a local server shows (connection refused, timeouts, dropped connections, HTTP 5xx,
  malformed JSON). After the last try it raises :class:`BackendError` with one clear line;
  a 4xx answer is not retried and raises :class:`ServerReplyError` at once.
* :meth:`JsonClient.stream`: a streamed answer (NDJSON as Ollama sends it, or server-sent
  events as OpenAI-compatible servers do), read whole with the same retries, each object with
  its arrival time: the client-side time to first token comes from it (:class:`Streamed`).
* :func:`ordered_map`: keeps up to ``in_flight`` calls running in a thread pool and yields the
  results in input order (``in_flight=1`` is strictly sequential, for timing runs).
* Line-end helpers: both servers stop at ``"\\n"`` on their own side; the backends reproduce the
  embedded backend's "first line with content" rule from that (see :func:`line_end_stops`).
* :func:`http_overhead_pct`: the client-side overhead over the engine's native time.
* :func:`token_logprobs`, :func:`entry_logprobs`: a reply's per-token logprobs, typed.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from quantmatrix.backends.base import BackendError, GenerationRequest, TokenLogprob
from quantmatrix.backends.http_stream import Streamed, json_object, stream_complete, stream_object

if TYPE_CHECKING:
    from quantmatrix.config import ModelSpec, Study

T = TypeVar("T")
R = TypeVar("R")

#: Called with (HTTP status, error text); True means "do not retry this answer".
FatalCheck = Callable[[int, str], bool]


@dataclass(frozen=True)
class ServerOptions:
    """Settings shared by the server backends.

    ``retries`` is the number of retries after the first try; the wait before retry ``i``
    (0-based) is ``backoff_s * 2**i``. ``in_flight`` requests are kept running at once
    (1 = strictly sequential). ``keep_alive`` is Ollama's (a duration such as ``"5m"``).
    ``logprobs`` asks the server for per-token log-probabilities (kept when it sends them).
    ``stream``: the OpenAI-compatible backend streams its replies (a client-side TTFT); Ollama's
    always does. ``kv_cache``: the KV-cache type the server runs with, as the study names it
    (a server-wide setting no request can change and neither API reports; None: not named).
    """

    chat: bool = True
    context_length: int = 2048
    seed: int = 42
    timeout_s: float = 300.0
    retries: int = 3
    backoff_s: float = 0.5
    in_flight: int = 1
    keep_alive: str = "5m"
    logprobs: bool = True
    stream: bool = True
    kv_cache: str | None = None


def server_options(spec: ModelSpec, study: Study, logprobs: bool) -> ServerOptions:
    """A study model's server settings: its chat choice (default: the server's template), the
    study's context length and seed, the model's requests in flight."""
    return ServerOptions(
        chat=spec.chat if spec.chat is not None else True,
        context_length=study.context_length,
        seed=study.decoding.seed,
        in_flight=spec.in_flight,
        logprobs=logprobs,
        kv_cache=spec.kv_cache[0] if spec.kv_cache else None,
    )


class ServerReplyError(BackendError):
    """The server answered with an error that retrying will not fix (4xx, or marked fatal)."""

    def __init__(self, status: int, detail: str, line: str) -> None:
        super().__init__(line)
        self.status = status
        self.detail = detail


class _Transient(Exception):
    """One failed try that may succeed when repeated; ``reason`` is the user-facing cause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so an error message stays on one line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def error_detail(response: httpx.Response) -> str:
    """The error text of a reply: ``{"error": "..."}`` (Ollama), ``{"error": {"message": ..}}``
    (OpenAI) or the raw body."""
    try:
        body = response.json()
    except ValueError:
        return one_line(response.text) or response.reason_phrase
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict):
        err = err.get("message", err)
    return one_line(str(err))


def _connect_reason(exc: httpx.ConnectError) -> str:
    text = str(exc)
    if "refused" in text.lower():
        return "is unreachable (connection refused)"
    return f"is unreachable ({one_line(text) or type(exc).__name__})"


class JsonClient:
    """JSON requests to one server, with bounded retries; every failure ends in one line."""

    def __init__(self, label: str, base_url: str, options: ServerOptions, hint: str) -> None:
        self.label = label
        self.base_url = base_url.rstrip("/")
        self.options = options
        self.hint = hint
        self._http = httpx.Client(base_url=self.base_url, timeout=options.timeout_s)

    def _line(self, reason: str) -> str:
        return f"{self.label} at {self.base_url} {reason}; {self.hint}"

    def _once(
        self, method: str, path: str, body: Any, fatal: FatalCheck | None
    ) -> tuple[Any, httpx.Headers]:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.ConnectError as exc:
            raise _Transient(_connect_reason(exc)) from None
        except httpx.TimeoutException:
            raise _Transient(f"did not answer within {self.options.timeout_s:g} s") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            raise _Transient("dropped the connection") from None
        if response.status_code >= 400:
            self._refuse(response.status_code, error_detail(response), fatal)
        try:
            return response.json(), response.headers
        except ValueError:
            raise _Transient("sent malformed JSON") from None

    def request(
        self, method: str, path: str, body: Any = None, fatal: FatalCheck | None = None
    ) -> tuple[Any, httpx.Headers]:
        """Send one request, retrying transient faults; return (decoded JSON, headers)."""
        return self._retrying(lambda: self._once(method, path, body, fatal))

    def _retrying(self, attempt_once: Callable[[], T]) -> T:
        """``attempt_once()``, asked again after a transient fault with exponential backoff;
        the last fault, with the number of tries, is one BackendError line."""
        attempts = self.options.retries + 1
        for attempt in range(attempts):
            try:
                return attempt_once()
            except _Transient as exc:
                if attempt + 1 >= attempts:
                    tries = f" ({attempts} tries)" if attempts > 1 else ""
                    raise BackendError(self._line(exc.reason + tries)) from None
                time.sleep(self.options.backoff_s * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _stream_once(self, path: str, body: Any, sse: bool, fatal: FatalCheck | None) -> Streamed:
        objects: list[dict[str, Any]] = []
        arrivals: list[float] = []
        started = time.perf_counter()
        try:
            with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    self._refuse(response.status_code, error_detail(response), fatal)
                for raw in response.iter_lines():
                    obj = stream_object(raw, sse)
                    if obj is not None:
                        objects.append(obj)
                        arrivals.append(time.perf_counter() - started)
                headers = response.headers
        except httpx.ConnectError as exc:
            raise _Transient(_connect_reason(exc)) from None
        except httpx.TimeoutException:
            raise _Transient(f"sent nothing for {self.options.timeout_s:g} s") from None
        except httpx.TransportError:
            raise _Transient("dropped the connection") from None
        except ValueError:
            raise _Transient("sent malformed JSON in a stream") from None
        if not stream_complete(objects, sse):
            raise _Transient("broke off a stream before its end")
        return Streamed(objects, arrivals, headers, time.perf_counter() - started)

    def _refuse(self, status: int, detail: str, fatal: FatalCheck | None) -> None:
        if status < 500 or (fatal is not None and fatal(status, detail)):
            line = f"{self.label} at {self.base_url} answered HTTP {status}: {detail}"
            raise ServerReplyError(status, detail, line)
        raise _Transient(f"failed with HTTP {status}: {detail}")

    def stream(
        self, path: str, body: Any, sse: bool = False, fatal: FatalCheck | None = None
    ) -> Streamed:
        """POST and read a streamed answer whole (NDJSON, or SSE with ``sse``), retrying
        transient faults as :meth:`request` does; a broken stream is asked again from the
        start. The client timeout applies to each wait for the next line."""
        return self._retrying(lambda: self._stream_once(path, body, sse, fatal))

    def get(self, path: str) -> Any:
        return self.request("GET", path)[0]

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)[0]

    def stream_lines(self, path: str, body: Any) -> Iterator[dict[str, Any]]:
        """POST and yield each JSON line of a streamed (NDJSON) answer; no retries.

        The client timeout applies to each wait for the next line, not to the whole stream.
        """
        try:
            with self._http.stream("POST", path, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    detail = error_detail(response)
                    line = f"{self.label} at {self.base_url} answered HTTP "
                    line += f"{response.status_code}: {detail}"
                    raise ServerReplyError(response.status_code, detail, line)
                for raw in response.iter_lines():
                    if raw.strip():
                        yield json_object(raw)
        except httpx.ConnectError as exc:
            raise BackendError(self._line(_connect_reason(exc))) from None
        except httpx.TimeoutException:
            reason = f"sent nothing for {self.options.timeout_s:g} s of a stream"
            raise BackendError(self._line(reason)) from None
        except httpx.TransportError as exc:
            raise BackendError(self._line(f"broke off a stream ({one_line(str(exc))})")) from None
        except ValueError:
            raise BackendError(self._line("sent malformed JSON in a stream")) from None

    def close(self) -> None:
        self._http.close()


def ordered_map(fn: Callable[[T], R], items: Sequence[T], in_flight: int) -> Iterator[R]:
    """``map(fn, items)`` with up to ``in_flight`` calls running at once, in input order.

    The first exception is raised when its item's turn comes, after every earlier result has
    been yielded; calls not started yet are cancelled.
    """
    if in_flight <= 1:
        for item in items:
            yield fn(item)
        return
    with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="qm-http") as pool:
        pending: deque[Future[R]] = deque()
        feed = iter(items)
        try:
            for item in feed:
                pending.append(pool.submit(fn, item))
                if len(pending) >= in_flight:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def line_end_stops(request: GenerationRequest) -> list[str]:
    """Stop strings to send: the request's own, plus ``"\\n"`` for ``stop_at_line_end``."""
    stops = list(request.stop)
    if request.stop_at_line_end and "\n" not in stops:
        stops.append("\n")
    return stops


def needs_line_retry(request: GenerationRequest, text: str, finish: str) -> bool:
    """True when a server-side ``"\\n"`` stop cut the answer before any content.

    The embedded backend stops at the end of the first line *with content*; a server stopping
    at the first ``"\\n"`` differs only when the answer opens with a blank line. Then the
    backend asks again without that stop and cuts the first content line itself.
    """
    return request.stop_at_line_end and finish == "stop" and not text.strip()


def first_content_line(text: str) -> str:
    """The embedded backend's ``stop_at_line_end`` cut: the first line after leading space."""
    return text.lstrip().split("\n", 1)[0]


def answer_first_line(
    request: GenerationRequest, ask: Callable[[list[str]], tuple[str, str, T]]
) -> tuple[str, str, T]:
    """Ask with :func:`line_end_stops`, retry once without the line stop when it cut the answer
    before any content, then apply the ``stop_at_line_end`` cut. ``ask(stops)`` returns
    (text, finish reason, whatever else the backend keeps from the reply)."""
    text, finish, kept = ask(line_end_stops(request))
    if needs_line_retry(request, text, finish):
        text, finish, kept = ask(list(request.stop))
    if request.stop_at_line_end:
        finish = "stop" if "\n" in text.lstrip() else finish
        text = first_content_line(text)
    return text, finish, kept


def http_overhead_pct(wall_s: float, native_s: float) -> float:
    """Client-side overhead over the engine's native time, in percent: 100*(wall-native)/native."""
    if native_s <= 0:
        raise ValueError(f"native time must be positive, got {native_s}")
    return 100.0 * (wall_s - native_s) / native_s


TOP_LOGPROBS = 20  # the most alternatives Ollama and OpenAI-style servers return per token


def letters_from_top_logprobs(top: Sequence[dict[str, Any]], n: int) -> tuple[float, ...]:
    """Per option letter A.., the summed probability of its forms ("A", " A") among a server's
    top alternatives for the first generated token; a letter not among them counts 0, so the
    sum (``letter_mass``) says how much of the distribution the alternatives covered."""
    probs = [0.0] * n
    seen: set[str] = set()
    for entry in top:
        token, logprob = entry.get("token"), entry.get("logprob")
        if not isinstance(token, str) or not isinstance(logprob, int | float) or token in seen:
            continue
        seen.add(token)
        bare = token[1:] if token.startswith(" ") else token
        if len(bare) == 1 and "A" <= bare < chr(ord("A") + n):
            probs[ord(bare) - ord("A")] += math.exp(float(logprob))
    return tuple(probs)


def token_logprobs(pairs: Iterable[tuple[Any, Any]]) -> tuple[TokenLogprob, ...] | None:
    """(token, logprob) pairs from a reply, typed; None when a pair is not (text, number), so
    a result never carries half a list."""
    out: list[TokenLogprob] = []
    for token, logprob in pairs:
        if not isinstance(token, str) or not isinstance(logprob, int | float):
            return None
        out.append(TokenLogprob(token, float(logprob)))
    return tuple(out)


def entry_logprobs(entries: Any) -> tuple[TokenLogprob, ...] | None:
    """Logprobs from a list of ``{"token", "logprob", ...}`` objects (Ollama, OpenAI chat)."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return None
    return token_logprobs((e.get("token"), e.get("logprob")) for e in entries)
