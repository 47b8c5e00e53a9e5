"""Numbered schema migrations, one folder per database: `<dialect>/NNNN_<what>.sql`, applied in order."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

_MIGRATION_FILE = re.compile(r"^(\d{4})_\w+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    script: str


def load_migrations(dialect: str) -> list[Migration]:
    """Every migration of `dialect`, lowest version first."""
    migrations: list[Migration] = []
    for entry in files(f"{__name__}.{dialect}").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            migrations.append(Migration(int(match[1]), entry.name, entry.read_text(encoding="utf-8")))
    migrations.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two {dialect} migrations share a version: {versions}")
    return migrations


def newer_schema(applied: set[int], migrations: list[Migration]) -> str | None:
    """Why a database whose applied migrations include versions this code does not know must not be used, or None."""
    unknown = sorted(applied - {migration.version for migration in migrations})
    if not unknown:
        return None
    return (
        f"the database schema is newer than this fabric-jobs (it has migrations {unknown}, which this version does "
        "not know): run the fabric-jobs version that migrated it, or a newer one"
    )
