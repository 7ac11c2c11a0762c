"""A STAND-IN for the Hugging Face Hub's file API, for tests. It is not the Hub.

It serves what ``huggingface_hub``'s ``HfApi.model_info`` and ``hf_hub_download`` ask of it
(read from huggingface_hub 2.4's hf_api.py, file_download.py and utils/_http.py):

- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: ``{"id", "sha",
  "siblings": [{"rfilename"}]}``; an unknown repo answers 404 with ``X-Error-Code:
  RepoNotFound``, an unknown revision 404 with ``X-Error-Code: RevisionNotFound``;
- ``HEAD`` / ``GET /{repo}/resolve/{rev}/{file}``: the bytes, with ``X-Repo-Commit``, ``ETag``
  (the file's SHA-256, as the Hub gives for LFS files) and ``Content-Length``; a gated repo
  answers 401 with ``X-Error-Code: GatedRepo`` unless the request carries its token.

Revisions are the branch ``main`` or the repo's commit id.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.standin_server import LocalServer


@dataclass
class Repo:
    files: dict[str, Path]
    gated_token: str | None = None  # a gated repo: files only for this bearer token
    commit: str = ""
    sha256: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, path in sorted(self.files.items()):
            self.sha256[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        joined = "".join(f"{n}:{d}" for n, d in sorted(self.sha256.items()))
        self.commit = self.commit or hashlib.sha1(joined.encode()).hexdigest()


class HubStandIn(LocalServer):
    """Serves ``repos`` on 127.0.0.1 at a free port; ``requests`` records (method, path)."""

    def __init__(self, repos: dict[str, Repo]) -> None:
        self.repos = repos
        self.requests: list[tuple[str, str]] = []

    def start(self) -> HubStandIn:
        self._serve(_Handler)
        return self


class _Handler(BaseHTTPRequestHandler):
    standin: HubStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self._route(body=True)

    def do_HEAD(self) -> None:
        self._route(body=False)

    def _route(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.standin.requests.append((self.command, path))
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            self._info("/".join(parts[2:4]), parts[5] if len(parts) > 5 else "main", body)
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._file("/".join(parts[:2]), parts[3], "/".join(parts[4:]), body)
        else:
            self._error(404, "RepoNotFound", "Not Found", body)

    def _repo(self, name: str, revision: str, body: bool) -> Repo | None:
        repo = self.standin.repos.get(name)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {name} not found", body)
            return None
        if revision not in ("main", repo.commit):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", body)
            return None
        return repo

    def _info(self, name: str, revision: str, body: bool) -> None:
        repo = self._repo(name, revision, body)
        if repo is None:
            return
        data = {"id": name, "modelId": name, "sha": repo.commit, "private": False,
                "gated": "manual" if repo.gated_token else False,
                "siblings": [{"rfilename": n} for n in sorted(repo.files)]}  # fmt: skip
        self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"}, body)

    def _file(self, name: str, revision: str, filename: str, body: bool) -> None:
        repo = self._repo(name, revision, body)
        if repo is None:
            return
        if repo.gated_token and self.headers.get("authorization") != f"Bearer {repo.gated_token}":
            msg = f"Access to model {name} is restricted. You must have access to it."
            self._error(401, "GatedRepo", msg, body)
            return
        if filename not in repo.files:
            self._error(404, "EntryNotFound", f"{filename} does not exist", body)
            return
        data = repo.files[filename].read_bytes()
        headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{repo.sha256[filename]}"',
                   "Content-Type": "application/octet-stream"}  # fmt: skip
        self._send(200, data, headers, body)

    def _error(self, status: int, code: str, message: str, body: bool) -> None:
        payload = json.dumps({"error": message}).encode()
        headers = {"X-Error-Code": code, "X-Error-Message": message,
                   "Content-Type": "application/json"}  # fmt: skip
        self._send(status, payload, headers, body)

    def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")  # so that stop() is felt at once
        self.close_connection = True
        self.end_headers()
        if body:
            self.wfile.write(data)
