"""The run log: append-only JSONL files of typed, versioned, sealed rows, plus ``manifest.json``.

``files.py`` appends, seals and reads the files; ``rows.py`` defines the rows (one pydantic
model per file, each with its schema version); ``migrate.py`` brings older versions up on read;
``check.py`` says what holds across the rows of a file (one row per key, rows of this run only,
known versions) and repairs it; ``log.py`` reads a whole run back as typed rows.
"""

from quantmatrix.runlog.check import LogIntegrityError, load_rows
from quantmatrix.runlog.files import (
    DETERMINISM,
    KLD,
    LOG_FILES,
    LONG_CONTEXT,
    MANIFEST,
    MEMORY,
    SAMPLES,
    SCORES,
    TIMING,
    VARIANTS,
    AppendLog,
    LineProblem,
    ReadResult,
    canonical_json,
    read_manifest,
    read_rows,
    row_digest,
    seal,
    write_json_atomic,
)
from quantmatrix.runlog.log import RunLog
from quantmatrix.runlog.rows import (
    ContextMemoryRow,
    DeterminismRow,
    KldRow,
    LetterStats,
    LogRow,
    LongContextRow,
    SampleRow,
    SampleTiming,
    ScoreRow,
    ScoringModels,
    TimingRow,
    VariantRow,
)

__all__ = [
    "DETERMINISM",
    "KLD",
    "LOG_FILES",
    "LONG_CONTEXT",
    "MANIFEST",
    "MEMORY",
    "SAMPLES",
    "SCORES",
    "TIMING",
    "VARIANTS",
    "AppendLog",
    "ContextMemoryRow",
    "DeterminismRow",
    "KldRow",
    "LetterStats",
    "LineProblem",
    "LogIntegrityError",
    "LogRow",
    "LongContextRow",
    "ReadResult",
    "RunLog",
    "SampleRow",
    "SampleTiming",
    "ScoreRow",
    "ScoringModels",
    "TimingRow",
    "VariantRow",
    "canonical_json",
    "load_rows",
    "read_manifest",
    "read_rows",
    "row_digest",
    "seal",
    "write_json_atomic",
]
