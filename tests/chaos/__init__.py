"""The chaos run: "nothing lost, nothing charged twice" (``python -m tests.chaos.run``).

Real PostgreSQL, Redis, the simulator, the API and several ARQ workers run as local
processes while a fault injector SIGKILLs workers, flushes Redis and restarts
PostgreSQL; afterwards every accepted video must have reached its expected final state,
settled exactly once, with a sound ledger.
"""
