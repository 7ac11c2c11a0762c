"""One factory for the server backends, so the study runner picks them by a string."""

from __future__ import annotations

from typing import Literal

from quantmatrix.backends.base import Backend
from quantmatrix.backends.http import ServerOptions

ServerKind = Literal["ollama", "openai"]


def make_server_backend(
    kind: ServerKind, endpoint: str, model: str, options: ServerOptions
) -> Backend:
    """An :class:`OllamaBackend` (``model`` is the tag) or an :class:`OpenAIBackend`.

    Nothing is sent to the server until the first call that needs it.
    """
    if kind == "ollama":
        from quantmatrix.backends.ollama import OllamaBackend

        return OllamaBackend(endpoint, model, options)
    if kind == "openai":
        from quantmatrix.backends.openai_compat import OpenAIBackend

        return OpenAIBackend(endpoint, model, options)
    raise ValueError(f"unknown server backend {kind!r}; use 'ollama' or 'openai'")
