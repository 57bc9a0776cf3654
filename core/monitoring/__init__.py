"""Monitoring: the model evaluation store. Predictions and their delayed ground truth are ingested; each
window gets its metrics, estimates before labels arrive, per-field drift and the segments behind a loss;
checks are the rules evaluated on those windows.

- `checks`: Checks: a rule on a model's evaluations (metric, drift, business metric, data quality), its results and history.
- `drift`: Per-field drift with Evidently 0.7's own column typing, default test choice and statistical tests.
- `estimation`: Performance estimated before labels arrive: confidence-based performance estimation (CBPE).
- `evaluation_store`: The model evaluation store: a version's metrics, estimates, business metrics and drift per time window.
- `evaluation_views`: What the evaluation store and drift pages show: trends against training and checks, and one window in depth.
- `ingest`: Logging predictions and their delayed ground truth: from a DataFrame, a CSV path or an uploaded file.
- `prediction_files`: Reading prediction and label files in chunks: CSV paths or uploads (every column as text) and DataFrames.
- `slice_findings`: Why did it drop: the segments behind a window's loss, found, stored per evaluation, read and worded.
- `slice_report`: What the segments of one window say: a loss per row, the top slices, and each slice's figures.
- `slices`: Slice finding: the few data segments where a model loses most, in pure numpy on one window's rows.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "checks": (
        "CheckRead", "CheckResultRead", "describe_rule", "define_check", "set_enabled",
        "list_checks", "get_check", "run_checks", "record_probe", "history", "project_histories",
        "get_result", "apply_template", "watch_segment",
    ),
    "drift": (
        "field_drift", "data_drift", "full_report_html", "histogram", "category_shares",
    ),
    "estimation": (
        "calibrate", "estimate",
    ),
    "evaluation_store": (
        "EvaluationRead", "windows", "context_for", "store", "evaluate", "evaluate_new",
        "list_evaluations", "get_evaluation", "export_evaluations", "ingest_file", "ingest_frame",
    ),
    "evaluation_views": (
        "StoreView", "store_view", "DriftView", "drift_view", "field_distribution", "full_report",
    ),
    "ingest": (
        "ingest_predictions", "ingest_ground_truth", "ingest_detected",
    ),
    "slice_findings": (
        "FindingRead", "available_losses", "compute", "explain", "explain_failures", "stored_top",
        "slice_value", "trend", "latest_labelled", "model_of",
    ),
    "slice_report": (
        "losses", "loss_for_check",
    ),
})
