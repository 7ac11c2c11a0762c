"""Files of a Hugging Face model repo, fetched with ``huggingface_hub`` (its cache, its tokens).

The repo's revision is resolved to a commit and its file list (``model_info``), then each file
the source needs is fetched with ``hf_hub_download`` (which writes into the Hub cache under a
temporary name, renames it when whole, and records the revision's commit for offline runs);
every file must come from that one commit. ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_CACHE`` and
``HF_HUB_OFFLINE`` are read at call time. Without a network, files already in the cache are used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmatrix.levels import LEVELS
from quantmatrix.models.spelling import HubSource

# what a safetensors conversion needs from the repo's top level (other weight formats are left)
_WANTED = re.compile(
    r"^[^/]+\.(safetensors|json|model|jinja|tiktoken)$|^[^/]*(merges|vocab)[^/]*\.txt$"
)


class HubError(ValueError):
    """A Hugging Face source that cannot be had; one line that says how to fix it."""


@dataclass(frozen=True)
class HubFiles:
    source: HubSource
    commit: str  # the revision resolved to a commit
    folder: Path  # the cache's snapshot folder for that commit
    files: tuple[str, ...]  # the names fetched, relative to folder
    gguf: Path | None  # the GGUF file the source names, if it names one


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def fetch(source: HubSource) -> HubFiles:
    """Resolve the revision, pick the files the source needs, and fetch them into the cache."""
    try:
        commit, names = _listing(source)
    except Exception as exc:  # the library's errors and the transport's, mapped to one line
        if not _is_network(exc):
            raise _hub_error(exc, source) from None
        return _from_cache(source)
    wanted = _wanted(source, names)
    try:  # by the revision's own name, so the cache records it for offline runs
        paths = [_download(source, source.revision or "main", name) for name in wanted]
    except Exception as exc:
        raise _hub_error(exc, source) from None
    folder = paths[0].parent
    if any(p.parent.name != commit for p in paths):
        raise HubError(f"{source.spelling} moved to a new commit while downloading; run again")
    gguf = paths[0] if source.wants_gguf else None
    return HubFiles(source, commit, folder, tuple(wanted), gguf)


def cached(source: HubSource) -> HubFiles | None:
    """The source's files if the Hugging Face cache already holds them, else None (no network,
    nothing written)."""
    try:
        return _from_cache(source)
    except HubError:
        return None


def _listing(source: HubSource) -> tuple[str, list[str]]:
    from huggingface_hub import HfApi

    info = HfApi(endpoint=_endpoint()).model_info(source.repo, revision=source.revision)
    names = [s.rfilename for s in info.siblings or []]
    if not info.sha:
        raise HubError(f"{source.spelling}: the Hub gave no commit for this revision")
    return info.sha, names


def _download(source: HubSource, revision: str, name: str) -> Path:
    from huggingface_hub import hf_hub_download

    return Path(hf_hub_download(source.repo, name, revision=revision, endpoint=_endpoint()))


def _from_cache(source: HubSource) -> HubFiles:
    """No network: the files of this revision already in the Hub cache, else one line."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(
            snapshot_download(source.repo, revision=source.revision, local_files_only=True)
        )
    except Exception:
        where = _endpoint() or "the Hugging Face Hub"
        raise HubError(
            f"{source.spelling}: cannot reach {where} (no network?) and the files are not in "
            "the Hugging Face cache; connect once, or use a local .gguf or safetensors folder"
        ) from None
    names = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    try:  # only files already fetched are listed, and all of them exist
        wanted = _wanted(source, names)
    except HubError as exc:
        raise HubError(
            f"offline (the Hub cannot be reached), and the Hugging Face cache lacks it: {exc}"
        ) from None
    gguf = folder / wanted[0] if source.wants_gguf else None
    return HubFiles(source, folder.name, folder, tuple(wanted), gguf)


def _wanted(source: HubSource, names: list[str]) -> list[str]:
    return [_pick_gguf(source, names)] if source.wants_gguf else _safetensors_files(source, names)


def _safetensors_files(source: HubSource, names: Iterable[str]) -> list[str]:
    names = sorted(names)
    chosen = [n for n in names if _WANTED.match(n)]
    if not any(n.endswith(".safetensors") for n in chosen):
        ggufs = [n for n in names if n.endswith(".gguf")]
        if ggufs:
            levels = sorted({lv for n in ggufs for lv in _levels_in(n)}) or ggufs[:3]
            raise HubError(
                f"{source.spelling} holds GGUF files but no safetensors; name one: "
                f"{source.spelling}:{levels[0]} (found {', '.join(levels)})"
            )
        raise HubError(
            f"{source.spelling} holds neither safetensors nor GGUF files; "
            "quantmatrix needs one of the two"
        )
    if "config.json" not in chosen:
        raise HubError(f"{source.spelling} has safetensors but no config.json; it cannot convert")
    return chosen


def _level_pattern(level: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9]){re.escape(level)}(?![A-Za-z0-9_])", re.IGNORECASE)


def _levels_in(name: str) -> list[str]:
    plain = [lv for lv in LEVELS if not lv.endswith("-imat")]
    return [lv for lv in plain if _level_pattern(lv).search(name)]


def _pick_gguf(source: HubSource, names: list[str]) -> str:
    want = source.file or ""
    ggufs = sorted(n for n in names if n.endswith(".gguf"))
    if want.endswith(".gguf"):
        if want in names:
            return want
        found = ", ".join(ggufs[:6]) or "none"
        raise HubError(f"{source.spelling}: the repo has no file {want!r} (GGUF files: {found})")
    if want.upper() not in LEVELS:
        raise HubError(
            f"{source.spelling}: {want!r} is neither a .gguf file name nor a quant level "
            "(e.g. Q4_K_M)"
        )
    hits = [n for n in ggufs if _level_pattern(want).search(n)]
    if len(hits) != 1:
        found = ", ".join(hits or ggufs[:6]) or "none"
        how = "several files match" if hits else "no GGUF file matches"
        raise HubError(f"{source.spelling}: {how} {want}; name the file ({found})")
    return hits[0]


def _is_network(exc: BaseException) -> bool:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return True
    if isinstance(exc, HfHubHTTPError):
        return False
    kinds = {k.__name__ for k in type(exc).__mro__}
    return bool(kinds & {"ConnectionError", "TimeoutError", "TransportError", "ConnectError"})


def _hub_error(exc: BaseException, source: HubSource) -> HubError:
    from huggingface_hub import errors

    where = source.spelling
    if isinstance(exc, HubError):
        return exc
    if isinstance(exc, errors.GatedRepoError):
        return HubError(
            f"{where} is a gated repo and this machine has no access; accept its terms on the "
            "Hub, then log in (`hf auth login`) or set HF_TOKEN"
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return HubError(
            f"{where}: revision {source.revision!r} not found; use a branch, tag or commit "
            "of the repo"
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        return HubError(
            f"{where}: repository not found (or private without a token); check the name, "
            "or log in (`hf auth login`) or set HF_TOKEN"
        )
    if isinstance(exc, errors.EntryNotFoundError):
        return HubError(f"{where}: a file it lists is not on the Hub: {_first_line(exc)}")
    if isinstance(exc, errors.HfHubHTTPError):
        status = getattr(exc.response, "status_code", "?")
        return HubError(f"{where}: the Hub answered {status}: {_first_line(exc)}")
    if _is_network(exc) or isinstance(exc, OSError):
        return HubError(f"{where}: download failed ({_first_line(exc)}); check the network")
    return HubError(f"{where}: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: Any) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
