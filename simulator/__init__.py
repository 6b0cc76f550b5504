"""A local HTTP server speaking the aggregator gateway protocol (docs/upstreams.md).

See ``simulator.directives`` for the ``[sim:...]`` prompt directives (the documented
protocol by default, each real-world quirk of ``upstream-corpus/gateway/`` on demand),
``simulator.quirks`` for applying them to every task, ``simulator.render_spec`` for how
the served video reflects the request, and ``simulator.main`` for the command line and
the environment variables.
"""
