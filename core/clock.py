"""Time in one convention: naive datetimes in UTC, everywhere in the database."""

from datetime import UTC, datetime


def now() -> datetime:
    """The current UTC time, naive (the storage convention on SQLite and PostgreSQL alike)."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc_naive(value: datetime) -> datetime:
    """Convert an aware datetime to naive UTC; a naive one is taken as UTC already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(UTC).replace(tzinfo=None)
