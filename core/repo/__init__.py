"""Repositories: one module per table (or group of tables that only exist together), the
only place that builds SQL. Each function runs in the caller's connection or transaction
and returns small typed read models, never raw rows; the request or job that called it
decides when to commit (see docs/architecture.md, "Layering").
"""
