"""Projects: the business initiatives and projects a model serves, the governance blueprint each project
follows by its risk level, and the project's process map from data to retraining.

- `blueprints`: Blueprints: the governance workflow a project follows, chosen by its risk level.
- `process_map`: The process map of a project: data → training → versions → environments → monitoring → retraining.
- `projects`: Projects, business initiatives and the portfolio view.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "blueprints": (
        "StageRead", "BlueprintRead", "ensure_standard_blueprints", "list_blueprints",
        "get_blueprint", "blueprint_for_risk", "save_blueprint", "assign_blueprint",
    ),
    "process_map": (
        "build",
    ),
    "projects": (
        "VersionRead", "ModelRead", "ProjectRead", "get_or_create_initiative", "create_project",
        "get_project", "portfolio", "project_dashboard", "PortfolioView", "portfolio_view",
        "list_project_keys", "list_projects",
    ),
})
