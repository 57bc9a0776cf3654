"""Catalog: reusable components (datasets, recipes, models, check and scenario templates, business metrics)
with an owner, tags, the projects using them and a trust status; project templates wire a new project.

- `components`: The catalog: reusable components with an owner, tags, the projects that use them and a trust status.
- `datasets`: Datasets: a CSV file or a SQL query registered as versions with a schema, a fingerprint and a profile.
- `templates`: Project templates: a new project wired in one transaction — blueprint, model, checks, daily scenario.
- `trust`: Trust in a catalog component: what the record says about reusing it.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "components": (
        "DEFINITION_KINDS", "KIND_LABELS", "UseRead", "ComponentRead", "SearchResult",
        "ChangeResult", "words", "normalize_tags", "register_component", "tag_component",
        "record_use", "dependents_of", "note_change", "may_change", "update_component", "get_component", "search",
        "Facets", "facets", "CatalogView", "browse",
    ),
    "datasets": (
        "DatasetVersionRead", "DatasetRead", "register_dataset", "accept_version", "require_usable",
        "load_frame", "get_dataset", "list_datasets",
    ),
    "templates": (
        "TemplateRead", "list_templates", "get_template", "create_project_from_template",
        "save_as_template", "FormView", "form_view",
    ),
    "trust": (
        "Trust", "assess", "describe_changes",
    ),
})
