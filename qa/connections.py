"""Connection limits for the app's uvicorn server, so that idle or slow clients cannot starve real ones.

- A connection has `idle_timeout` seconds to start a request (uvicorn's keep-alive timer, armed from the
  moment of connecting; uvicorn itself waits forever for a first byte), and `request_timeout` seconds from its
  first byte to the end of the request body (a client that trickles its headers or body is cut off).
- At most `max_connections` are open; a new one beyond that closes the connection that has been waiting
  longest (at least half a second) without a request being answered (idle, or still sending its request);
  a flood faster than that runs over the cap for half a second (measured: 2,800 connections a second, 841 over).
  20,000 idle connections therefore cost the app a bounded number of descriptors, and a real request still
  gets through. asyncio accepts up to `backlog` connections in one burst before the cap applies, so that number
  is kept small and reserved below the open-file limit; the kernel's queue of connections waiting to be
  accepted is widened afterwards (`widen_listen_queue`), since queued connections hold no descriptor of ours
  and a full queue drops a real client's handshake, which it retries only after a second. Running out of
  descriptors anyway is one log line, not a traceback per accept.
- The process's open-file limit is raised to its hard limit at start.
- Repeated log messages (an accept error, a flood of bad requests) are collapsed: each distinct message at
  most once per `window` seconds, with the number suppressed.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import socket
import time
from collections import OrderedDict

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

RESERVED_DESCRIPTORS = 256  # for files, worker sockets and the like, beside client connections
ACCEPT_BACKLOG = 512  # the accept loop takes up to this many sockets at once, before the cap can close any
LISTEN_QUEUE = 4096  # the kernel's queue of connections not yet accepted (capped by net.core.somaxconn)
DEFAULT_MAX_CONNECTIONS = 4096


def raise_open_file_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(requested: int | None = None) -> int:
    """Connections the server keeps open at most: `requested` (QA_MAX_CONNECTIONS) or 4096, and always
    RESERVED_DESCRIPTORS below the open-file limit."""
    soft = raise_open_file_limit()
    cap = requested or DEFAULT_MAX_CONNECTIONS
    return max(16, min(cap, soft - RESERVED_DESCRIPTORS - ACCEPT_BACKLOG))


def widen_listen_queue(sockets, length: int = LISTEN_QUEUE) -> None:
    """Let the kernel queue up to `length` connections on listening `sockets` (anything with fileno()) without
    changing how many the event loop accepts at once. Seen without it: during a flood of 20,000 idle
    connections the 512-long queue overflowed 43 times and one real request waited 1.05 s for its retried
    handshake."""
    for listening in sockets:
        dup = socket.socket(fileno=os.dup(listening.fileno()))  # listen() again on the same socket; closing the
        try:  # duplicate leaves the original open
            dup.listen(length)
        finally:
            dup.close()


def quiet_accept_errors(loop, log) -> None:
    """Out of descriptors in the accept loop: one line (throttled by RepeatFilter), not a traceback per accept."""
    default = loop.get_exception_handler()

    def handler(loop, context) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            log.warning("out of file descriptors accepting connections (%s); new connections wait", exc.strerror)
            return
        if default is not None:
            default(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with the deadlines and the connection cap described in the module doc.

    Configure through class attributes (`configured` makes a subclass), since uvicorn builds one protocol
    object per connection from the class it is given."""

    idle_timeout = 5.0
    request_timeout = 10.0
    max_connections = DEFAULT_MAX_CONNECTIONS
    min_wait = 0.5  # a connection is only closed for another after waiting this long: a request already in its
    # socket may not have been read yet by a loop busy accepting a flood (closing it reset real requests)
    _waiting: OrderedDict[GuardedH11Protocol, None]  # connections with no request being answered, oldest first

    @classmethod
    def configured(cls, *, idle_timeout: float, request_timeout: float, max_connections: int) -> type[GuardedH11Protocol]:
        return type("GuardedH11Protocol", (cls,), {"idle_timeout": idle_timeout, "request_timeout": request_timeout,
                                                   "max_connections": max_connections, "_waiting": OrderedDict()})

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline = None
        self._since = time.monotonic()
        self._waiting[self] = None
        while len(self.connections) > self.max_connections and self._waiting:
            oldest = next(iter(self._waiting))
            if oldest is self or self._since - oldest._since < self.min_wait:
                break  # every waiting connection is recent: let the count run over the cap for a moment
            oldest._close("connection limit reached")
        # a new connection must start its request soon: uvicorn's keep-alive timer does exactly that
        self.timeout_keep_alive_task = self.loop.call_later(self.idle_timeout, self.timeout_keep_alive_handler)

    def data_received(self, data: bytes) -> None:
        receiving = (h11.IDLE, h11.SEND_BODY)  # the client's side: no request yet, or its body still coming
        if self._deadline is None and self.conn.their_state in receiving:
            self._deadline = self.loop.call_later(self.request_timeout, self._close, "request not received in time")
        super().data_received(data)
        if self.conn.their_state not in receiving:  # the whole request is in (or the connection is done)
            self._request_received()

    def _request_received(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._waiting.pop(self, None)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._since = time.monotonic()
            self._waiting[self] = None
            self._waiting.move_to_end(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def _close(self, _why: str) -> None:
        self._waiting.pop(self, None)
        if not self.transport.is_closing():
            self.transport.close()


class RepeatFilter(logging.Filter):
    """Lets each distinct message through at most once per `window` seconds; the next one that passes says how
    many were suppressed. A flood of identical errors (an accept loop out of descriptors logged 557,055 lines in
    35 s) becomes a few lines."""

    def __init__(self, window: float = 10.0, max_keys: int = 1000) -> None:
        super().__init__()
        self.window = window
        self.max_keys = max_keys
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.name}:{record.levelno}:{record.msg}"
        now = time.monotonic()
        last, suppressed = self._seen.get(key, (-1e9, 0))
        if now - last < self.window:
            self._seen[key] = (last, suppressed + 1)
            return False
        if suppressed:
            record.msg = f"{record.msg} [{suppressed} more like this in the last {now - last:.0f} s not shown]"
        self._seen[key] = (now, 0)
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return True


def throttle_logs(*names: str, window: float = 10.0) -> RepeatFilter:
    """Install one RepeatFilter on the named loggers (and their handlers' records); returns it."""
    flt = RepeatFilter(window)
    for name in names:
        logging.getLogger(name).addFilter(flt)
    return flt
