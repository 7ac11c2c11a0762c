"""Statistics of a run: pure functions of the rescored outcomes, no I/O and no formatting.

``inputs`` holds the records (per-variant outcomes, per-model ladders); ``describe`` the
interval estimates and timing spread; ``significance`` the difference tests; ``equivalence``
the TOST tests; ``multiplicity`` the corrections and fixed-sequence gatekeeping; ``power`` the
detectable effects and sample sizes; ``section`` assembles them into the JSON-safe statistics
section of ``analysis.json``.
"""
