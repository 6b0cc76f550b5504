"""A private PgBouncer in transaction mode in front of the test PostgreSQL, for the tests
of ``DATABASE_URL=…?pgbouncer=true`` (``core/db.py``). Debian's ``pgbouncer`` package;
PgBouncer refuses to run as root, so under root it runs as ``postgres``."""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Sequence
from pathlib import Path

from cli.localservices import ServerProcess
from cli.supervise import HOST

EXECUTABLE = "/usr/sbin/pgbouncer"


class PgBouncer(ServerProcess):
    """``pool_mode = transaction`` with ``pool_size`` server connections per database:
    each transaction may run on another server connection, the case that breaks named
    prepared statements. ``base_dir`` must be readable by ``postgres`` under root."""

    name = "pgbouncer"

    def __init__(self, base_dir: Path, upstream_port: int, database: str, pool_size: int) -> None:
        self.base_dir = Path(base_dir)
        self.upstream_port = upstream_port
        self.database = database
        self.pool_size = pool_size
        super().__init__(self.base_dir / "pgbouncer.log")
        self._postgres = pwd.getpwnam("postgres") if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """The SQLAlchemy URL through the pooler, with the flag the service needs there."""
        port = self._require_port()
        return f"postgresql+asyncpg://postgres@{HOST}:{port}/{self.database}?pgbouncer=true"

    def _command(self, port: int) -> Sequence[str]:
        if shutil.which(EXECUTABLE) is None:
            raise FileNotFoundError("pgbouncer not found; run deploy/install-deps.sh")
        config = self.base_dir / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"{self.database} = host={HOST} port={self.upstream_port} dbname={self.database}"
            " user=postgres\n"
            "[pgbouncer]\n"
            f"listen_addr = {HOST}\nlisten_port = {port}\n"
            f"unix_socket_dir =\nauth_type = any\npool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\nmax_client_conn = 500\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )
        config.chmod(0o644)
        return [EXECUTABLE, str(config)]

    def _user(self) -> pwd.struct_passwd | None:
        return self._postgres
