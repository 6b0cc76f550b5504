"""redis-py's asyncio connections with their write timeout as ``asyncio.timeout``.

redis-py 5 (arq 0.28 pins ``redis<6``) sends every command through
``asyncio.wait_for(..., socket_timeout)`` when a socket timeout is set
(``redis.asyncio.connection.AbstractConnection.send_packed_command``). On Python 3.11
``wait_for`` wraps the write in a new Task: ~15-25 µs of CPU per command, a dozen
commands per poll hop (arq's pick, run and finish, our enqueue), and it can drop a
cancellation that arrives as the write finishes (CPython gh-86296). Reads are already
bounded by ``asyncio.timeout``. :func:`bound_writes_in_context` gives a pool's
connections the same write with the same bound, error and disconnect, without the Task.
The bound is armed only when the socket did not take the whole command: with nothing
left in the transport's buffer the protocol is not paused and ``drain`` returns without
waiting, so a timer there (~5-7 µs of CPU to arm and cancel) would bound nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class _ContextTimedWrites(AbstractConnection):
    """``send_packed_command`` as redis-py 5.3 writes it, ``socket_timeout`` applied by
    ``asyncio.timeout`` (None: unbounded, as there)."""

    async def send_packed_command(
        self, command: bytes | str | Iterable[bytes], check_health: bool = True
    ) -> None:
        if not self.is_connected:
            await _untyped(self.connect)()
        elif check_health:
            await _untyped(self.check_health)()
        if isinstance(command, str):
            command = command.encode()
        if isinstance(command, bytes):
            command = [command]
        writer = self._writer
        assert writer is not None  # connected above
        try:
            writer.writelines(command)
            if writer.transport.get_write_buffer_size():
                async with asyncio.timeout(self.socket_timeout):
                    await writer.drain()
            else:  # the socket took it all: drain returns at once, no timer to arm
                await writer.drain()
        except TimeoutError:  # before OSError, its base class
            await self.disconnect(nowait=True)
            raise RedisTimeoutError("Timeout writing to socket") from None
        except OSError as exc:
            await self.disconnect(nowait=True)
            number, message = ("UNKNOWN", exc.args[0]) if len(exc.args) == 1 else exc.args[:2]
            raise RedisConnectionError(
                f"Error {number} while writing to socket. {message}."
            ) from exc
        except BaseException:
            # A write cut short leaves the stream mid-command: the connection is unusable.
            await self.disconnect(nowait=True)
            raise


def _untyped(method: Callable[[], Any]) -> Callable[[], Awaitable[None]]:
    """redis-py's own coroutine methods ``connect``/``check_health`` (not annotated)."""
    return cast(Callable[[], Awaitable[None]], method)


_TIMED: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _timed(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    if issubclass(connection_class, _ContextTimedWrites):
        return connection_class
    made = _TIMED.get(connection_class)
    if made is None:
        bases = (_ContextTimedWrites, connection_class)
        made = _TIMED[connection_class] = type(connection_class.__name__, bases, {})
    return made


def bound_writes_in_context(pool: ConnectionPool) -> None:
    """Make the connections ``pool`` opens from now on (TCP, TLS or Unix socket, as its
    URL chose) write under ``asyncio.timeout``; call it before the first command."""
    pool.connection_class = _timed(pool.connection_class)
