"""The local servers and process helpers the tests use.

They live in ``cli.localservices`` (PostgreSQL, Redis, moto S3) and ``cli.supervise``
(child processes, free ports, waiting with a deadline), where the benchmarks can reach
them without importing ``tests``; test modules import them from here.
"""

from cli.localservices import (
    PG_BIN,
    PG_DATABASE,
    MotoServer,
    PostgresServer,
    RedisServer,
    ServerProcess,
)
from cli.supervise import HOST, free_port, port_open, wait_for_port, wait_until

__all__ = [
    "HOST",
    "PG_BIN",
    "PG_DATABASE",
    "MotoServer",
    "PostgresServer",
    "RedisServer",
    "ServerProcess",
    "free_port",
    "port_open",
    "wait_for_port",
    "wait_until",
]
