"""The plumbing the local stand-in servers share (Ollama's API, the Hugging Face Hub's file API):
a threaded HTTP server on 127.0.0.1 at a free port, started and stopped by the test."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietServer(ThreadingHTTPServer):
    """Daemon threads; a client that hangs up mid-reply is not an error worth printing."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients the tests cut off (timeouts, dropped connections)


class LocalServer:
    """Serves a handler class (given this object as its ``standin``) until :meth:`stop`."""

    _server: ThreadingHTTPServer | None = None

    def _serve(self, handler_class: type[BaseHTTPRequestHandler]) -> None:
        handler = type("Handler", (handler_class,), {"standin": self})
        self._server = QuietServer(("127.0.0.1", 0), handler)
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.02}, daemon=True).start()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
