"""The errors services raise; each carries a one-line message meant for the person who caused it."""


class WatchtowerError(Exception):
    """Base class: the message names the problem and is safe to show."""


class InvalidInput(WatchtowerError):
    """The input is malformed or inconsistent; nothing was written."""


class NotFound(WatchtowerError):
    """A named object does not exist."""


class Conflict(WatchtowerError):
    """The action clashes with existing data (duplicate name, id, window)."""


class Unauthenticated(WatchtowerError):
    """No identity, or credentials that do not verify (missing, wrong, expired or revoked)."""


class Forbidden(WatchtowerError):
    """The actor may not do this."""


class IntegrityFailure(WatchtowerError):
    """Stored data failed verification (artifact checksum, audit chain)."""


class Unavailable(WatchtowerError):
    """A service Watchtower depends on (an MLflow tracking server) cannot be reached; nothing was written."""
