"""Adaptive sampling's pure parts, shared by the study runner and the analysis.

``rounds`` orders the items (seeded, stratified) and cuts the order into rounds; ``betting``
is the anytime-valid confidence sequence; ``rule`` is the stopping rule on paired outcomes.
The pipeline reads the rule to decide which items to ask next; the analysis reads the same
rule and the same intervals to report what was certified. Neither side owns them.
"""
