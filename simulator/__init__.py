"""A local HTTP server speaking the aggregator gateway protocol and Google's Gemini API
(docs/upstreams.md), at the same base URL.

See ``simulator.directives`` for the ``[sim:...]`` prompt directives (the documented
protocol by default, each real-world quirk of ``upstream-corpus/`` on demand),
``simulator.gemini_routes`` for the Gemini side, ``simulator.quirks`` for applying
directives to every task, ``simulator.render_spec`` for how the served video reflects
the request, and ``simulator.main`` for the command line and the environment variables.
"""
