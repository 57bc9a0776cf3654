"""Models: the registry of models and their versions, where each version comes from (lineage), training
recipes and runs, retraining on the latest labelled window, and scoring with standard and business metrics.

- `column_mapping`: Which column of a model's data is what: id, timestamp, target, score, prediction, features and their kinds.
- `labelled_data`: Labelled data to train and validate on: a CSV, or the evaluation store's predictions joined with ground truth.
- `lineage`: Where each version comes from and where it runs: the registry's lineage and overview read models.
- `mapping_records`: Recorded column mappings of a model row: numbered, audited, and mirrored in the model's feature list.
- `mappings`: A model's column mapping by name, and its corrections (recorded by mapping_records).
- `metrics`: Standard and business metrics of a model on labelled rows, in numpy (equal to scikit-learn's definitions).
- `mlflow_client`: The one module that talks to MLflow (the optional `watchtower[mlflow]` extra), so its API churn stays here.
- `mlflow_import`: A Watchtower version from an MLflow registered model version (`models:/NAME@ALIAS` or `models:/NAME/VERSION`).
- `mlflow_mirror`: Window evaluations written back to the MLflow run a version was imported from (`--mirror-metrics`).
- `mlflow_sources`: MLflow tracking servers an administrator trusts: the only ones Watchtower imports models from.
- `registry`: Models and their versions: registration with a reference sample, optional artifact, lineage.
- `retraining`: Retraining: the active version's recipe trained on the latest labelled window, registered as a candidate.
- `scoring`: Scoring a fitted estimator on a frame of features, and its standard and business metrics (core.models.metrics).
- `summaries`: Each model at a glance, for listings: its project, its latest version and how many versions are in each status.
- `training`: Training recipes and tracked training runs: fit on a held-out split, record, compare, promote to a version.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "column_mapping": (
        "Mapping", "Declared", "Proposal", "propose", "read_schema", "check_incoming",
    ),
    "labelled_data": (
        "latest_labelled_ts", "labelled_window", "recent_labelled",
    ),
    "lineage": (
        "DeploymentRead", "versions_overview", "lineage", "verify_artifact", "model_names",
    ),
    "mappings": (
        "MappingInfo", "current_mapping", "mapping_history", "propose_correction", "set_mapping",
    ),
    "metrics": (
        "binary", "regression", "business", "decide",
    ),
    "mlflow_import": (
        "MlflowImport", "import_from_mlflow",
    ),
    "mlflow_sources": (
        "SourceInfo", "list_sources", "trust_source", "distrust_source",
    ),
    "registry": (
        "ModelInfo", "VersionInfo", "get_model", "get_version", "list_versions", "list_models",
        "add_version", "create_model", "set_version_status", "register_model", "import_version",
        "trusted_types", "trust_types", "distrust_types", "allow_pickle",
    ),
    "retraining": (
        "retrain",
    ),
    "scoring": (
        "metrics",
    ),
    "summaries": (
        "ModelSummary", "list_model_summaries",
    ),
    "training": (
        "RunInfo", "build_pipeline", "fit_recipe", "record_run", "get_run", "list_runs",
        "compare_runs", "promote_run", "train",
    ),
})
