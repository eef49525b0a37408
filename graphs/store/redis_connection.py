"""redis-py connections whose commands can be cancelled on Python 3.11.

With a socket timeout set, redis-py sends every command under `asyncio.wait_for`, and on
Python 3.11 `wait_for` swallows a cancellation that arrives as the send completes
(python/cpython#86296, fixed in 3.12 by building `wait_for` on `asyncio.timeout`). The task
then runs on as if never cancelled: a turn past its deadline or whose client left, a lock's
renewal after its turn let the lock go (the Redis drill caught those renewals). Measured here:
5 of 60 cancellations at successive points of a `SET` were lost. These connections send without
`wait_for`: every reply stays bounded by the socket timeout, which redis-py applies to reads
with `asyncio.timeout`. A send only waits when the socket's buffer is full (a Redis that
stopped reading a large write); that wait is bounded by the turn's deadline, not the timeout.

They also report a connection closed before a send as the connection error it is. The cluster
client closes every connection when a failover makes the cluster report itself down, those in
use by other commands included; writing to one then failed with uvloop's `RuntimeError` ("the
handler is closed"), which reached clients as a 500 in the failover drill.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import ConnectionError as RedisConnectionError


class CancellableSend(AbstractConnection):
    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self.is_connected:
            # Connect (and its handshake) with every timeout in force.
            await self.connect_check_health(check_health=False)
        if check_health:
            await self.check_health()  # type: ignore[no-untyped-call]  # PING if asked
        if self._writer is None or self._writer.is_closing():
            # Closed by another task since; no await from here to the write.
            await self.disconnect(nowait=True)
            raise RedisConnectionError("The connection was closed before this command.")
        timeout, self.socket_timeout = self.socket_timeout, None
        try:
            await super().send_packed_command(command, check_health=False)
        finally:
            self.socket_timeout = timeout


class TcpConnection(CancellableSend, Connection):
    pass


class TlsConnection(CancellableSend, SSLConnection):
    pass


class UnixConnection(CancellableSend, UnixDomainSocketConnection):
    pass


BY_SCHEME: dict[str, type[AbstractConnection]] = {
    "redis": TcpConnection,
    "rediss": TlsConnection,
    "unix": UnixConnection,
}
