"""The fixed words of the domain: roles, risk levels, statuses, policies, verdicts and other closed lists.

Plain tuples with no imports, so the command line can offer them as choices without loading the database
layer or any data library.
"""

ROLES = ("business", "data_scientist", "ml_engineer", "risk_manager", "it_ops", "admin")
RISK_LEVELS = ("low", "medium", "high")
TASKS = ("binary", "regression")
VERSION_STATUSES = ("candidate", "active", "archived")
VERSION_ORIGINS = ("manual", "scheduled_retrain", "imported", "external")
POLICIES = ("block", "warn", "allow")
TIERS = ("lower", "higher")
REVIEW_STATES = ("NOT_STARTED", "WAITING_FOR_FEEDBACK", "WAITING_FOR_APPROVAL", "APPROVED", "REJECTED", "ABANDONED")
VERDICTS = ("APPROVED", "MINOR_ISSUE", "MAJOR_ISSUE")
COMPONENT_KINDS = ("dataset", "recipe", "model", "model_version", "check_template", "scenario_template",
                   "business_metric")
ALGORITHMS = ("logistic_regression", "random_forest", "hist_gradient_boosting")
GRANULARITIES = ("1D", "7D", "1M")
DOCUMENT_FORMATS = ("md", "html", "pdf")
