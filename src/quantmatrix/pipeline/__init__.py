"""The pipeline: a study becomes rows of the run log, phase after phase, each resumable.

``ladder.py`` builds the variants, ``evaluate.py`` asks them the samples (-> SampleRow,
VariantRow), ``timing.py`` asks a subset again one request at a time (-> TimingRow),
``determinism.py`` asks some answered items again on a fresh backend (-> DeterminismRow),
``divergence.py`` compares their token distributions with the baseline's
(-> KldRow), ``score.py`` scores generation outputs (-> ScoreRow); ``run.py`` runs them in that
order. Every phase finds its pending work with ``resume.py`` and reports to one
``progress.Reporter``. Nothing here reads an analysis: that is a function of the log.
"""

from quantmatrix.pipeline.run import RunOptions, RunOutcome, default_backend, run_study

__all__ = ["RunOptions", "RunOutcome", "default_backend", "run_study"]
