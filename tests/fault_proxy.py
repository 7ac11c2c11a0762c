"""A fault-injecting HTTP proxy on 127.0.0.1, between a server backend and a real server.

It reads each request (HTTP/1.1, ``Content-Length`` bodies), asks its schedule which fault the
request gets, and either forwards it upstream on a fresh connection with ``Connection: close``
(the reply streamed back byte for byte, with ``Connection: close`` set, so every request is a
connection of its own) or injects the fault instead:

* ``refuse``: the proxy stops listening for ``refuse_s`` (this connection is reset; new ones
  are refused by the kernel), as a server that is not up;
* ``stall``: nothing is answered (or, half of the time, the reply stops after its first bytes)
  for ``stall_s``, past the client's timeout;
* ``5xx``: an HTTP 500, 502 or 503 answered by the proxy (a burst: the next requests too);
* ``malformed``: ``200`` with a body that is not JSON (a streamed request gets a broken line);
* ``drop``: the reply forwarded, then the connection cut after a random share of its bytes
  (half of the time just after a whole line: an NDJSON object or an SSE event);
* ``restart``: the reply cut after part of its body and the upstream server killed, then
  started again ``restart_s`` later; while it is down the proxy closes connections without an
  answer (as a client talking to a dead server sees them fail);
* ``outage``: the upstream server killed for ``outage_s``, longer than the client's retries
  last (the variant fails; a rerun completes it).

Every injected fault, every request and every retry (a request equal to one that met a fault)
is counted in :class:`ProxyCounts`. The schedule is a function of the request's number, so a
seeded schedule injects the same faults at the same requests on every run.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

Fault = str  # ok | refuse | stall | 5xx | malformed | drop | restart | outage
FAULTS = ("refuse", "stall", "5xx", "malformed", "drop", "restart", "outage")
STATUS_5XX = (500, 502, 503)


@dataclass
class ProxyCounts:
    requests: int = 0
    forwarded: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    retries: int = 0  # requests equal to the last one, which met a fault: the client's retries
    upstream_down: int = 0  # requests that found the upstream server down (closed, unanswered)

    def summary(self) -> dict[str, object]:
        return {"requests": self.requests, "forwarded": self.forwarded,
                "faults": dict(sorted(self.faults.items())), "retries": self.retries,
                "upstream_down": self.upstream_down}  # fmt: skip


@dataclass
class Schedule:
    """Faults by request number (``faults``: number -> kind); every other request is
    forwarded. :meth:`seeded` spreads a number of each kind over the requests."""

    faults: dict[int, str] = field(default_factory=dict)

    def __call__(self, number: int, path: str) -> Fault:
        return self.faults.get(number, "ok")

    @classmethod
    def seeded(
        cls, seed: int, counts: dict[str, int], start: int = 4, spacing: tuple[int, int] = (3, 6)
    ) -> Schedule:
        """``counts[kind]`` faults of each kind in a seeded order, from request ``start`` on,
        ``spacing`` requests apart (seeded within the range), a ``5xx`` as a burst of 1-3
        consecutive requests: far enough apart that no request meets more faults than the
        client's retries."""
        rng = random.Random(seed)
        kinds = [kind for kind, n in sorted(counts.items()) for _ in range(n)]
        rng.shuffle(kinds)
        faults: dict[int, str] = {}
        number = start
        for kind in kinds:
            burst = rng.randint(1, 3) if kind == "5xx" else 1
            for i in range(burst):
                faults[number + i] = kind
            number += burst + rng.randint(*spacing)
        return cls(faults)

    def planned(self) -> Counter[str]:
        return Counter(self.faults.values())


@dataclass
class Request:
    head: bytes
    body: bytes
    path: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.head.split(b"\r\n", 1)[0] + self.body).hexdigest()


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        body += chunk
    path = head.split(b"\r\n", 1)[0].split(b" ")[1].decode(errors="replace")
    return Request(head, body, path)


def _with_close(head: bytes) -> bytes:
    """The head with ``Connection: close`` in place of any connection header."""
    lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
    return b"\r\n".join([*lines, b"Connection: close"])


class FaultProxy:
    """Serves on 127.0.0.1 at a fixed port (chosen once), forwarding to ``upstream``.

    ``kill`` stops the upstream server; ``start`` starts it again and returns its address
    (a ``restart`` or ``outage`` needs both: the server comes back ``restart_s`` or
    ``outage_s`` after it was killed, plus the time it takes to start)."""

    def __init__(
        self,
        upstream: tuple[str, int],
        schedule: Callable[[int, str], Fault],
        kill: Callable[[], None] | None = None,
        start: Callable[[], tuple[str, int]] | None = None,
        refuse_s: float = 1.0,
        stall_s: float = 2.0,
        restart_s: float = 0.5,
        outage_s: float = 10.0,
    ) -> None:
        self.upstream = upstream
        self.schedule = schedule
        self.kill, self.start = kill, start
        self.refuse_s, self.stall_s = refuse_s, stall_s
        self.restart_s, self.outage_s = restart_s, outage_s
        self.counts = ProxyCounts()
        self.rng = random.Random(0)
        self.restarted = threading.Event()  # set each time the upstream is back
        self._faulted: set[str] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._closed = False
        self._down_until = 0.0
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._listen()
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- listening ----------------------------------------------------------------------------

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        sock.settimeout(0.05)
        self._listener = sock

    def _pause(self, seconds: float) -> None:
        """Stop listening for ``seconds``: connections meanwhile are refused by the kernel."""
        with self._lock:
            self._down_until = max(self._down_until, time.monotonic() + seconds)
            if self._listener is not None:
                self._listener.close()
                self._listener = None

    def _accept_loop(self) -> None:
        while not self._closed:
            with self._lock:
                if self._listener is None and time.monotonic() >= self._down_until:
                    self._listen()
                listener = self._listener
            if listener is None:
                time.sleep(0.02)
                continue
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._closed = True
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None

    # -- the upstream server going down ---------------------------------------------------------

    def _take_down(self, down_s: float) -> None:
        """Kill the upstream server now; start it again ``down_s`` later, in the background."""
        if self.kill is None or self.start is None:
            raise RuntimeError("a restart or outage needs the proxy's kill and start callbacks")
        self.restarted.clear()
        self.kill()
        start = self.start

        def come_back() -> None:
            time.sleep(down_s)
            self.upstream = start()
            self.restarted.set()

        threading.Thread(target=come_back, daemon=True).start()

    # -- one request --------------------------------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.closing(conn):
            conn.settimeout(60)
            try:
                request = _read_request(conn)
            except OSError:
                return
            if request is None:
                return
            with self._lock:
                number = self.counts.requests
                self.counts.requests += 1
                if request.digest in self._faulted:
                    self.counts.retries += 1
                fault = self.schedule(number, request.path)
                if fault == "ok":
                    self._faulted.discard(request.digest)
                else:
                    self.counts.faults[fault] += 1
                    self._faulted.add(request.digest)
            with contextlib.suppress(OSError):
                self._answer(conn, request, fault)

    def _answer(self, conn: socket.socket, request: Request, fault: Fault) -> None:
        if fault == "refuse":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            self._pause(self.refuse_s)
            return  # closed with a reset
        if fault == "5xx":
            body = b'{"error": "fault proxy: server error"}'
            conn.sendall(_status(self.rng.choice(STATUS_5XX), body))
            return
        if fault == "malformed":
            conn.sendall(_status(200, _malformed(request)))
            return
        if fault == "stall" and self.rng.random() < 0.5:
            time.sleep(self.stall_s)  # not a byte: the client's timeout runs out
            return
        if fault == "outage":
            self._take_down(self.outage_s)
            return  # closed without an answer, the server gone
        self._forward(conn, request, fault)

    def _forward(self, conn: socket.socket, request: Request, fault: Fault) -> None:
        """Relay the request and its reply; a ``drop``, ``stall`` or ``restart`` cuts the reply
        after a random part of its body (then cuts the connection, waits past the client's
        timeout, or kills the upstream server)."""
        try:
            up = socket.create_connection(self.upstream, timeout=300)
        except OSError:
            with self._lock:
                self.counts.upstream_down += 1
            return  # the client sees its connection closed without an answer
        with contextlib.closing(up):
            up.sendall(_with_close(request.head) + b"\r\n\r\n" + request.body)
            with self._lock:
                self.counts.forwarded += 1
            if fault == "ok":
                return _relay(up, conn)
            head, body = _read_reply(up)
            conn.sendall(_with_close(head) + b"\r\n\r\n" + body[: self._cut(body)])
            if fault == "stall":
                time.sleep(self.stall_s)
            elif fault == "restart":
                self._take_down(self.restart_s)

    def _cut(self, body: bytes) -> int:
        """Where to cut a reply: half of the time at any byte, half of the time just after a
        whole line (an NDJSON object, an SSE event), where a client that takes the stream's
        end for granted would log a partial answer."""
        ends = [i + 1 for i in range(len(body) - 1) if body[i : i + 1] == b"\n"]
        if ends and self.rng.random() < 0.5:
            return self.rng.choice(ends)
        return self.rng.randint(0, max(0, len(body) - 1))


_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends a reset


def _relay(up: socket.socket, conn: socket.socket) -> None:
    """The reply, byte for byte as it arrives, its head marked ``Connection: close``."""
    head, _, rest = _read_head(up)
    conn.sendall(_with_close(head) + b"\r\n\r\n" + rest)
    while chunk := up.recv(65536):
        conn.sendall(chunk)


def _read_head(up: socket.socket) -> tuple[bytes, bytes, bytes]:
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = up.recv(65536)
        if not chunk:
            raise OSError("upstream closed before its reply's head")
        reply += chunk
    return reply.partition(b"\r\n\r\n")


def _read_reply(up: socket.socket) -> tuple[bytes, bytes]:
    """The whole reply (the upstream closes after it: ``Connection: close``)."""
    head, _, body = _read_head(up)
    while chunk := up.recv(65536):
        body += chunk
    return head, body


def _malformed(request: Request) -> bytes:
    """A body that is not JSON, in the shape the client expects (an SSE line for /v1/)."""
    streamed = b'"stream":true' in request.body.replace(b" ", b"")
    if streamed and request.path.startswith("/v1/"):
        return b'data: {"id": "x", "choices": [{"delta": tr\n\n'
    if streamed:
        return b'{"model": "x", "done": fal\n'
    return b'{"model": "x", "done": tr'


def _status(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 500: "Internal Server Error", 502: "Bad Gateway",
              503: "Service Unavailable"}[status]  # fmt: skip
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body
