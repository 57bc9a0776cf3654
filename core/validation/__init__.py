"""Validation: the lab for one version before it goes further: what-if scoring, individual explanations,
importance, diagnostics and the champion / challenger comparison on the same recent labelled data.

- `comparison`: Versions side by side on the same recent labelled data: metrics, business metrics, importance, drift.
- `diagnostics`: Diagnostics of a version, each pass / warn / fail with a one-sentence reason.
- `explanations`: Individual explanations: each feature's contribution to one score, and how they add up.
- `lab_results`: The lab's findings per version, computed once by the worker and stored as plain JSON.
- `lab`: The validation lab for one version: what-if scoring, explanations, importance, champion/challenger.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "comparison": (
        "load_version", "compare_versions",
    ),
    "diagnostics": (
        "too_few_rows",
    ),
    "lab_results": (
        "Findings", "StoredFindings", "queue", "stored", "compute_queued",
    ),
    "lab": (
        "MIN_EVALUATION_ROWS", "RECORD_CHOICES", "PRIMARY_MARGIN", "Lab", "open_lab", "SEGMENTS",
        "FeatureRange", "feature_ranges", "record_choices", "typical_record", "record_frame",
        "WhatIf", "what_if", "explain", "importance", "SegmentResult", "segment_comparison",
        "ChallengerVerdict", "champion_challenger",
    ),
})
