"""Benchmarks: the create path and the poll hop, each against a raw reference measured in
the same run (DESIGN §13). Entry point: ``python -m bench.run``."""
