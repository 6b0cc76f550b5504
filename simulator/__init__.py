"""A local HTTP server speaking the aggregator gateway protocol (UPSTREAM.md section 1).

See ``simulator.directives`` for the ``[sim:...]`` prompt directives and
``simulator.main`` for the command line and the environment variables.
"""
