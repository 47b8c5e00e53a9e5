"""Fixtures on the machine's real PostgreSQL: a fresh database per test, copied from a migrated template.

The server is FABRIC_JOBS_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432, trust auth).
Where it is unreachable the tests skip with the reason, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from fabric_jobs.server.backend import open_store

POSTGRES_SERVER = os.environ.get("FABRIC_JOBS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def database_url(name: str) -> str:
    return f"{POSTGRES_SERVER}/{name}"


def unique_database_name(purpose: str) -> str:
    return f"fabric_jobs_{purpose}_{uuid.uuid4().hex[:12]}"


def create_database(name: str, *, template: str | None = None) -> None:
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(statement)


def drop_database(name: str) -> None:
    with psycopg.connect(database_url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The server URL, once it answers; skips (fails in CI) when it does not."""
    try:
        with psycopg.connect(database_url("postgres"), connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        reason = f"PostgreSQL at {POSTGRES_SERVER} is unreachable ({' '.join(str(exc).split())})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return POSTGRES_SERVER


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> Iterator[str]:
    """A database with every migration applied, created once per session, to copy for each test."""
    name = unique_database_name("template")
    create_database(name)
    try:
        asyncio.run(open_store(database_url(name)).migrate())
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """The URL of a fresh, migrated database, dropped after the test."""
    name = unique_database_name("test")
    create_database(name, template=postgres_template)
    try:
        yield database_url(name)
    finally:
        drop_database(name)


@pytest.fixture
def unmigrated_postgres_url(postgres_server: str) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    name = unique_database_name("empty")
    create_database(name)
    try:
        yield database_url(name)
    finally:
        drop_database(name)
