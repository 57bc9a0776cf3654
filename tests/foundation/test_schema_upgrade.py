"""A database made by an earlier release gains the nullable columns a newer one declares when it is opened."""

from pathlib import Path

from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from core import db


def test_a_nullable_column_missing_from_an_existing_table_is_added_and_new_tables_are_created(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    db.init_schema(engine)
    table, column = next((t, c.name) for t in SQLModel.metadata.sorted_tables for c in t.columns
                         if c.nullable and not c.primary_key and not c.foreign_keys and not c.index and not c.unique)
    referenced = {fk.column.table.name for t in SQLModel.metadata.sorted_tables for fk in t.foreign_keys}
    other = next(t.name for t in SQLModel.metadata.sorted_tables if t.name not in referenced | {table.name})
    with engine.begin() as conn:
        conn.execute(text(f'ALTER TABLE "{table.name}" DROP COLUMN "{column}"'))
        conn.execute(text(f'DROP TABLE "{other}"'))

    db.init_schema(engine)

    found = inspect(engine)
    assert column in {c["name"] for c in found.get_columns(table.name)}
    assert other in found.get_table_names()
    engine.dispose()
