"""Architecture rules that import-linter cannot express (see pyproject's importlinter
contracts for the rest): SQL is built only in core/repo, and schemas stays free of the
async database layer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("service", "worker", "core", "schemas", "cli", "simulator")
REPOSITORIES = ROOT / "core" / "repo"
MIGRATIONS = ROOT / "core" / "migrations"
# The table definitions, the engine's connection set-up (PRAGMAs on the DBAPI cursor) and
# the migration runner (Alembic): schema, not data.
DEFINITIONS = (
    ROOT / "schemas" / "tables.py",
    ROOT / "core" / "db.py",
    ROOT / "core" / "migrate.py",
)

# Outside the repositories, only these SQLAlchemy names may be imported: connection and
# engine types, the driver errors, engine events. Everything else builds or runs SQL.
ALLOWED_IMPORTS = {
    "sqlalchemy.ext.asyncio": {"AsyncConnection", "AsyncEngine", "create_async_engine"},
    "sqlalchemy.exc": None,  # any exception
    "sqlalchemy": {"event", "Connection"},
}
SQL_MODULES = ("sqlalchemy", "sqlmodel")
# Calls that run SQL, whatever built it.
RUNNERS = frozenset({"execute", "exec_driver_sql", "exec", "scalar", "scalars", "run_sync"})


def sql_construction(source: str) -> list[str]:
    """Every place in ``source`` that imports SQL building blocks, reaches a table, or runs
    a statement (what only ``core/repo`` may do)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.split(".")[0] in SQL_MODULES
            ]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in SQL_MODULES:
                allowed = ALLOWED_IMPORTS.get(node.module, set())
                found += [
                    f"line {node.lineno}: from {node.module} import {alias.name}"
                    for alias in node.names
                    if allowed is not None and alias.name not in allowed
                ]
            elif node.module.startswith("core.repo.tables"):
                found.append(f"line {node.lineno}: table handles from {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr == "__table__":
            found.append(f"line {node.lineno}: .__table__")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in RUNNERS
        ):
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
    return found


def imports_of(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def product_files() -> list[Path]:
    return [
        path
        for package in PRODUCT
        for path in sorted((ROOT / package).rglob("*.py"))
        if not path.is_relative_to(REPOSITORIES)
        and not path.is_relative_to(MIGRATIONS)
        and path not in DEFINITIONS
    ]


def test_sql_statements_are_built_only_in_the_repositories() -> None:
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in product_files()
        if (found := sql_construction(path.read_text()))
    }
    assert offenders == {}


@pytest.mark.parametrize(
    "source",
    [
        "from sqlalchemy import select\n",
        "from sqlalchemy import Column, update\n",
        "import sqlalchemy\nsqlalchemy.delete(t)\n",
        "from sqlalchemy.sql import text\n",
        "from sqlmodel import select\n",
        "from core.repo.tables import tasks\n",
        "from sqlalchemy.dialects import postgresql\npostgresql.insert(t)\n",
        "import sqlalchemy as sqa\nsqa.select(t)\n",
        "import sqlmodel\nsqlmodel.select(t)\n",
        "from schemas.tables import VideoTask\nVideoTask.__table__.delete()\n",
        "from sqlalchemy import table\ntable('video_tasks').delete()\n",
        "async def f(conn):\n    await conn.exec_driver_sql('DELETE FROM video_tasks')\n",
        "async def f(conn, q):\n    await conn.execute(q)\n",
    ],
)
def test_the_sql_rule_catches_each_way_of_building_a_statement(source: str) -> None:
    assert sql_construction(source)


def test_the_sql_rule_allows_what_is_not_a_statement() -> None:
    source = (
        "from sqlalchemy import event\nfrom sqlalchemy.exc import DBAPIError\n"
        "from sqlalchemy.ext.asyncio import AsyncConnection\nfrom core.repo import tasks\n"
    )
    assert sql_construction(source) == []


def test_schemas_never_import_the_async_database_layer() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imports_of(path.read_text()) if name.startswith("sqlalchemy.ext")
        )
        for path in sorted((ROOT / "schemas").rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
