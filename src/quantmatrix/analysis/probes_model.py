"""The typed probes section of an analysis: context-length and batch sensitivity
(``analysis/long_context.py``, ``analysis/many_shot.py``, ``analysis/batch.py`` fill it).

Every interval is 95%; ``None`` ends mean there was too little to make one (one document,
no pairs)."""

from __future__ import annotations

from quantmatrix.analysis.frozen import Frozen


class Interval(Frozen):
    value: float
    low: float | None
    high: float | None
    n: int  # documents or items it rests on


class SameText(Frozen):
    """A bucket's first positions (``tokens`` per document) evaluated twice: in the sequence,
    after everything before them, and again from an empty cache. ``change`` is the first minus
    the second, paired within documents (t-interval): what the preceding context does to the
    level's KL with the text held fixed."""

    tokens: int
    in_sequence: float  # mean over documents
    restarted: float
    change: Interval
    ratio: float | None


class BucketKL(Frozen):
    """One level's token KL in one bucket of positions, over the documents reaching it."""

    bucket: int
    start: int
    end: int
    documents: int
    tokens: int
    kl: Interval  # mean of the documents' bucket means, t-interval over documents
    same_top: float  # pooled share of positions whose argmax is the baseline's
    ppl_ratio: float  # exp(mean NLL increase) over the bucket's positions, pooled
    seconds_per_document: float  # engine + comparison time for these positions
    same_text: SameText | None  # the control for the text (None for the first bucket)


class KLTrend(Frozen):
    """Does the level's KL grow with the context? (``stats/trend.py``)"""

    first: int  # bucket indices compared
    last: int
    change: Interval  # last - first bucket mean, paired within documents (nats)
    ratio: float | None  # last / first bucket mean
    slope_per_doubling: Interval  # nats per doubling of the position, cluster-robust
    verdict: str


class LevelKL(Frozen):
    variant: str
    model: str
    level: str
    is_baseline: bool
    buckets: tuple[BucketKL, ...]
    trend: KLTrend | None
    profile: tuple[tuple[int, float], ...]  # (block start, KL mean over documents)


class ManyShotBucket(Frozen):
    """One level's many-shot answers in one bucket; the change and agreement are paired with
    the baseline's answers to the same questions in the same bucket."""

    bucket: int
    start: int
    end: int
    shots: int
    prompt_tokens: tuple[int, int, int]  # min, median, max over the bucket's replies
    outside: int  # replies whose prompt landed outside [start, end)
    accuracy: Interval  # Wilson
    change_pp: Interval | None  # vs the baseline, Tango paired; None for the baseline
    same_answer: Interval | None  # share of the baseline's answers it repeats, Wilson
    prompt_s: float | None  # mean prompt evaluation seconds per reply (at the batch size)


class ManyShotTrend(Frozen):
    """Does the level's accuracy loss vs the baseline grow with the context? Per question,
    (variant - baseline correct at the last bucket) - (the same at the first), in pp, with a
    t-interval over questions (padded: ``stats/trend.padded_mean_interval``)."""

    first: int
    last: int
    change_pp: Interval
    verdict: str


class LevelManyShot(Frozen):
    variant: str
    model: str
    level: str
    is_baseline: bool
    task: str  # where the questions came from (mmlu, arc_challenge)
    buckets: tuple[ManyShotBucket, ...]
    trend: ManyShotTrend | None


class LongContext(Frozen):
    corpus_source: str | None
    documents: tuple[str, ...]
    cap: int | None  # the longest sequence evaluated (the last bucket's end, or the model's)
    kl_method: str | None
    levels: tuple[LevelKL, ...]
    many_shot: tuple[LevelManyShot, ...]


class BatchLevel(Frozen):
    """One level's answers at batch N (the evaluation) vs batch 1 (the timing phase's
    single-stream requests), paired on the items both asked."""

    variant: str
    model: str
    level: str
    batch: int  # requests decoded together (embedded engine) or kept in flight (servers)
    basis: str  # "decoded together" or "in flight"
    pairs: int
    identical: Interval  # share of byte-identical outputs, Wilson
    change_pp: Interval | None  # multiple-choice accuracy at N minus at 1, Tango paired
    letter_pairs: int
    letter_max_diff: float | None  # the largest |p_N - p_1| of any option letter, any item
    differing: tuple[str, ...]  # the items whose outputs differ (first ten)


class BatchSensitivity(Frozen):
    levels: tuple[BatchLevel, ...]


class Probes(Frozen):
    long_context: LongContext | None = None
    batch: BatchSensitivity | None = None
