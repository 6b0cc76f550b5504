"""Benchmarks: the create path and the poll hop, each against a raw reference measured in
the same run (docs/architecture.md, Performance targets). Entry point: ``python -m bench.run``."""
