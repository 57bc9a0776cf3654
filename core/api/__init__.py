"""The HTTP scoring API: each environment serves its deployed version; every prediction is logged to the store.

    GET  /healthz                                   up? and which deployments cannot be served (no token)
    GET  /v1/{environment}/{model}                  what runs there (token scope read: or predict:)
    POST /v1/{environment}/{model}/predict          {"records": [{feature: value, ...}, ...]} (scope predict:)
    POST /v1/{environment}/{model}/deployments      {"version": N, "note": "..."} (scope deploy:, the same gate)

Every route but /healthz needs `Authorization: Bearer <token>` (a personal access token, core/identity/tokens.py); the
token is verified, and its scope checked, before the body is read. Every client error is a 4xx whose JSON names
the field and the reason ({"detail": ..., "field": ...}); a model that cannot be loaded is a 503. The model's
thread pools are limited per request thread (WATCHTOWER_API_MODEL_THREADS, default 1) so that a request never
spins every core of a busy machine.

- `app`: the FastAPI application, its routes and error answers.
- `serving`: what runs where, the caller's token, estimators, scoring and logging.
- `requests`: reading and checking a request's body.
"""

from core.lazy import reexport

__getattr__, __dir__, __all__ = reexport(__name__, {
    "app": ("create_app",),
    "serving": ("ThreadLimit", "EstimatorCache", "model_threads_setting", "served", "score_request"),
})
