"""What ``manifest.json`` must hold for the run's readers: :func:`manifest_problem`.

``read_manifest`` refuses a manifest that fails it in one line (a damaged or hand-edited file),
so no reader meets a study config that does not parse or a field of the wrong type later on.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from quantmatrix.config import Study

_MAPPINGS = ("variants", "sources")


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """Why ``manifest`` cannot be read back, or None."""
    if not isinstance(manifest.get("config_hash"), str):
        return "config_hash is missing or not a string"
    if not isinstance(manifest.get("config"), dict):
        return "config (the run's study) is missing or not a mapping"
    try:
        Study.model_validate(manifest["config"])
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        return f"its study config does not parse (config.{where}: {err['msg']})"
    for key in _MAPPINGS:
        entries = manifest.get(key, {})
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            return f"{key} is not a mapping of names to entries"
    order = manifest.get("round_order")
    if order is not None and not (
        isinstance(order, list) and all(isinstance(k, str) for k in order)
    ):
        return "round_order is not a list of item keys"
    return None
