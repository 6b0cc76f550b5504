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

SQL_BUILDERS = frozenset(
    {"select", "insert", "update", "delete", "text", "and_", "or_", "func", "bindparam"}
)
SQL_MODULES = ("sqlalchemy", "sqlmodel")


def sql_construction(source: str) -> list[str]:
    """Every place in ``source`` that imports or calls a SQL statement builder."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in SQL_MODULES:
                found += [
                    f"line {node.lineno}: from {node.module} import {alias.name}"
                    for alias in node.names
                    if alias.name in SQL_BUILDERS
                ]
            elif node.module.startswith("core.repo.tables"):
                found.append(f"line {node.lineno}: table handles from {node.module}")
        elif isinstance(node, ast.Attribute) and node.attr in SQL_BUILDERS:
            base = node.value
            if isinstance(base, ast.Name) and base.id in (
                "sqlalchemy",
                "sa",
                "postgresql",
                "sqlite",
            ):
                found.append(f"line {node.lineno}: {base.id}.{node.attr}")
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
        if not path.is_relative_to(REPOSITORIES) and not path.is_relative_to(MIGRATIONS)
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
    ],
)
def test_the_sql_rule_catches_each_way_of_building_a_statement(source: str) -> None:
    assert sql_construction(source)


def test_the_sql_rule_allows_what_is_not_a_statement() -> None:
    source = "from sqlalchemy import JSON, Column, event\nfrom core.repo import tasks\n"
    assert sql_construction(source) == []


def test_schemas_never_import_the_async_database_layer() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imports_of(path.read_text()) if name.startswith("sqlalchemy.ext")
        )
        for path in sorted((ROOT / "schemas").rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
