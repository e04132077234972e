"""Running the demo with uvicorn, guarded against slow, idle and too many clients.

uvicorn alone waits forever for a request head that arrives a byte at a time, and accepts
connections until the process runs out of file descriptors; asyncio then logs every failed
``accept()`` (hundreds of MB a minute) and the server stops answering. :func:`serve` runs
uvicorn with :func:`guarded_protocol`, its HTTP/1.1 protocol with two additions:

- deadlines: a request head must arrive complete within :data:`HEAD_TIMEOUT_S` of the
  connection opening (or of the previous response, on a kept-alive connection); a body must
  arrive, and a response that the client stopped reading must be taken up again, within
  :data:`TRANSFER_TIMEOUT_S`. Past a deadline the connection is closed, without a log line.
- a cap on open connections, below the process's open-file limit (:func:`connection_budget`).
  At the cap a new connection takes the place of the one that has waited longest for its
  client (to send a request or to read a response), so slow clients cannot lock others out; if
  no connection is waiting on its client, the new one is closed at once.

Bursts of connections wait in the kernel's listen queue, which costs no descriptors
(:data:`LISTEN_QUEUE` long), while asyncio takes them a small batch at a time. Should the
open-file limit still be reached (files opened elsewhere in the process), asyncio's
"socket.accept() out of system resource" error is logged once a minute, not once per try.

Needs the optional packages of ``pip install 'stargan[web]'``.

Example:
    >>> serve(create_app(load("model.safetensors")), listen("127.0.0.1", 8000))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from stargan.config import ConfigError

HEAD_TIMEOUT_S = 10.0
"""A request line and its headers must arrive within this many seconds."""
TRANSFER_TIMEOUT_S = 60.0
"""A request body must arrive within this, and a stalled response must move again within it
(an 8 MiB upload needs about 1.1 Mbit/s)."""
LISTEN_QUEUE = 1024
"""Connections the kernel holds for us until we accept them (they cost no descriptors)."""
MAX_CONNECTIONS = 1024
"""Most open connections, whatever the open-file limit allows (each costs memory)."""
FD_MARGIN = 32
"""File descriptors kept free for the rest of the process (model and page reads, logging)."""
ACCEPT_ERROR_INTERVAL_S = 60.0
"""asyncio's accept-error message is logged at most once per this many seconds."""


def connection_budget(
    soft_limit: int | None = None, open_fds: int | None = None
) -> tuple[int, int]:
    """(most open connections, accept batch) that keep the process under its open-file limit.

    asyncio accepts up to a batch of connections per wake-up before any of them reaches the
    protocol that counts it, and a few wake-ups can pass before the count catches up, so three
    batches are kept free beside :data:`FD_MARGIN`. Defaults: the soft ``RLIMIT_NOFILE`` and
    the descriptors this process has open now.
    """
    if soft_limit is None:
        try:
            import resource
        except ImportError:  # Windows: no such limit to stay under
            return MAX_CONNECTIONS, 128
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft_limit == resource.RLIM_INFINITY:
            soft_limit = 1 << 20
    if open_fds is None:
        fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
        open_fds = len(os.listdir(fd_dir)) if os.path.isdir(fd_dir) else 16
    spare = soft_limit - open_fds - FD_MARGIN
    batch = max(8, min(1024, spare // 8))
    connections = min(MAX_CONNECTIONS, spare - 3 * batch)
    if connections < 16:
        raise ConfigError(
            f"the open-file limit (ulimit -n) is {soft_limit} with {open_fds} files already "
            f"open, which leaves room for {max(connections, 0)} connections; the server needs "
            f"16 or more: raise the limit, e.g. `ulimit -n 1024`"
        )
    return connections, batch


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines and a connection cap (see the module doc).

    Use :func:`guarded_protocol` to set the cap and the deadlines.
    """

    max_connections = MAX_CONNECTIONS
    head_timeout_s = HEAD_TIMEOUT_S
    transfer_timeout_s = TRANSFER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.phase: str | None = None  # what we wait for the client to do: head, body, read
        self.waiting_since = 0.0  # loop time at which the current phase began
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_longest_waiting():
            transport.abort()
            return
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set_phase(None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._follow()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._follow()

    def _follow(self) -> None:
        """Set the phase from h11's state: the deadline starts when a phase begins."""
        if self.transport.is_closing():
            phase = None
        elif self.flow.write_paused:
            phase = "read"
        elif self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
            phase = "head"
        elif self.conn.their_state is h11.SEND_BODY:
            phase = "body"
        else:  # the request has arrived: the server, not the client, is working
            phase = None
        if phase != self.phase:
            self._set_phase(phase)

    def _set_phase(self, phase: str | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.phase = phase
        if phase is not None:
            self.waiting_since = self.loop.time()
            timeout = self.head_timeout_s if phase == "head" else self.transfer_timeout_s
            self.deadline = self.loop.call_later(timeout, self._expire)

    def _expire(self) -> None:
        # abort, not close: close waits to flush a response the client is not reading.
        self.deadline = None
        self.transport.abort()

    def _evict_longest_waiting(self) -> bool:
        waiting = [
            c
            for c in self.connections
            if isinstance(c, GuardedH11Protocol)
            and c is not self
            and c.phase is not None
            and not c.transport.is_closing()
        ]
        if not waiting:
            return False
        min(waiting, key=lambda c: c.waiting_since).transport.abort()
        return True


def guarded_protocol(
    max_connections: int,
    head_timeout_s: float = HEAD_TIMEOUT_S,
    transfer_timeout_s: float = TRANSFER_TIMEOUT_S,
) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` with these limits, to pass as uvicorn's ``http=``."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "max_connections": max_connections,
            "head_timeout_s": head_timeout_s,
            "transfer_timeout_s": transfer_timeout_s,
        },
    )


class AcceptErrorFilter(logging.Filter):
    """Lets asyncio's "socket.accept() out of system resource" through once per interval.

    asyncio logs it for every queued connection it fails to accept (up to the backlog at each
    retry), with a traceback: thousands of lines a second while the descriptors run out.
    """

    def __init__(self, interval_s: float = ACCEPT_ERROR_INTERVAL_S) -> None:
        super().__init__()
        self.interval_s, self.last, self.suppressed = interval_s, -float("inf"), 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.getMessage().startswith("socket.accept() out of system resource"):
            return True
        now = time.monotonic()
        if now - self.last < self.interval_s:
            self.suppressed += 1
            return False
        error = record.exc_info[1] if record.exc_info else None
        record.msg = "socket.accept() failed (%s); %d such failures not logged since the last"
        record.args = (error, self.suppressed)
        record.exc_info = None
        self.last, self.suppressed = now, 0
        return True


class _Listener(socket.socket):
    """A listening socket whose queue asyncio cannot shorten.

    asyncio passes one number as both the kernel's listen queue and the connections it accepts
    per wake-up. The batch must be small to stay under the open-file limit, but as the queue it
    would turn bursts away (a dropped SYN costs a client a 1 s retry), and the queue costs no
    descriptors.
    """

    def listen(self, backlog: int = LISTEN_QUEUE) -> None:
        super().listen(max(backlog, LISTEN_QUEUE))


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, or a ConfigError saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = _Listener(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_QUEUE)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host} port {port}: {e.strerror or e}") from None
    return sock


def serve(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` with uvicorn on ``sock`` (from :func:`listen`) until interrupted, with
    the guards above; the socket is closed at the end."""
    max_connections, accept_batch = connection_budget()
    config = uvicorn.Config(
        app,
        http=guarded_protocol(max_connections),
        ws="none",  # the demo has no websocket route; upgrades would bypass the guards
        backlog=accept_batch,
    )
    asyncio_log, accept_errors = logging.getLogger("asyncio"), AcceptErrorFilter()
    asyncio_log.addFilter(accept_errors)
    try:
        with sock:
            uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # Ctrl-C: uvicorn has shut down gracefully, then raised the signal again
    finally:
        asyncio_log.removeFilter(accept_errors)
