"""Governance: the path of a version to production that nobody can skip. Reviews are the read side (where
a version stands, who may act, and why not); sign-offs are the actions; the deployer moves versions between
environments through the same gate; oversight is the risk manager's view of every project.

- `deployer`: Environments, deployments and the governance gate that every entry point (page, CLI, API, scenario) goes through.
- `endpoints`: Talking to the scoring endpoints from outside: test queries with their latency, and the endpoint health check.
- `environments`: Environments (staging = lower, production = higher), each with its governance policy and scoring endpoint.
- `oversight`: The risk manager's oversight: every project's governance at a glance, and one project's place in its blueprint.
- `reviews`: Reviews, the read side of governance: where each version stands and who may act on it.
- `rules`: Separation of duties in a review: who may sign, approve, reject or abandon it now, and why not.
- `signoffs`: Sign-offs, the acting side of governance: request a review, give feedback, approve, reject, abandon.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "deployer": (
        "DeploymentRead", "check_gate", "deploy", "rollback", "on_final_approval",
        "active_deployment", "what_runs_where", "history", "board",
    ),
    "endpoints": (
        "sample_record", "query_endpoint", "send_test_query", "probe", "evaluate_endpoint_check",
        "endpoint_check_ids",
    ),
    "environments": (
        "EnvironmentRead", "list_environments", "configure_environment",
    ),
    "oversight": (
        "StageView", "VersionView", "governance_portfolio", "project_governance", "governance_page",
    ),
    "reviews": (
        "FINAL_STATES", "DEFAULT_STAGE", "SignOffRead", "ReviewRead", "QueueItem", "review_stage",
        "stage_after", "review_read", "may_request", "request_rule", "can_request", "version_model",
        "latest_review_row", "review_state", "get_review", "find_review", "reviews_for_model",
        "pending_reviews", "review_queue",
    ),
    "rules": (
        "OPEN_STATES", "Allowed", "YES", "UNKNOWN", "signed_as", "sign_rule", "feedback_summary",
        "approve_rule", "reject_rule", "abandon_rule",
    ),
    "signoffs": (
        "request_review", "give_feedback", "approve", "reject", "abandon",
    ),
})
