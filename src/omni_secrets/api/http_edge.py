"""The HTTP edge as uvicorn serves it: header cap, header deadline, connection bound.

Contract section 17. uvicorn's HTTP/1.1 protocol (``httptools``, what ``http="auto"`` picks when
it is installed, as ``uvicorn[standard]`` does) reads request headers without any limit: a
10 MB header was answered 200, a 200 MB one grew the process by about 290 MB, and a client that
never finished its headers held its connection for as long as it liked (uvicorn's keep-alive
timeout runs only *between* requests). Middleware cannot help: it runs after the headers were
read. :class:`EdgeHttpProtocol` is the same protocol with three limits enforced where the bytes
arrive, before any application code runs:

- **Header cap** (:data:`MAX_HEADER_BYTES`, 64 KiB): the request line and header section of a
  request, as sent, may not exceed it. Bytes are counted as they arrive while a request's headers
  are incomplete, and at most the remaining allowance is handed to the parser, so no more than
  64 KiB of one request's headers is ever buffered; beyond it the answer is ``431 Request Header
  Fields Too Large`` and the connection is closed. A request pipelined in the same packet as the
  one before it is checked once its headers are parsed (their size as sent, recomputed); when
  the one before is still being answered, that answer is sent and the connection closed.
- **Header deadline** (:data:`HEADER_TIMEOUT_SECONDS`, 10 s): a connection that has not sent a
  complete request head within 10 s of connecting, or of its first byte of a later request on a
  kept-alive connection, is closed (no response: the client is not reading one). Idle time
  between requests stays bounded by uvicorn's keep-alive timeout (5 s).
- **Connection bound** (:data:`MAX_CONNECTIONS`, 512): a connection beyond it is answered
  ``503`` and closed at once, before anything is read. Why 512: the callers are a few trading
  engines with keep-alive pools, kubelet probes and Prometheus (tens of connections; the edge
  benchmark uses 16); 512 leaves them 10x room while bounding what a flood can hold: at most
  512 x 64 KiB = 32 MiB of header buffers, and 512 sockets well inside the 1,024 descriptors a
  default ``ulimit -n`` allows next to the database pool, gRPC and log files.

:func:`uvicorn_options` is what ``serve`` and ``dev`` pass to uvicorn. :class:`EdgeLimits` exists
so a test can shorten the deadline; production always gets the defaults above.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEADER_BYTES = 64 * 1024
HEADER_TIMEOUT_SECONDS = 10.0
MAX_CONNECTIONS = 512

# The request line's fixed part ("GET " is in the method, then " ", " HTTP/1.1", CRLF) and the
# blank line closing the head; each header line adds ": " and CRLF to its name and value.
_REQUEST_LINE_OVERHEAD = 12
_HEADER_LINE_OVERHEAD = 4
_HEAD_END = 2


@dataclass(frozen=True, slots=True)
class EdgeLimits:
    """The limits one server enforces (see the module doc for the defaults and why)."""

    max_header_bytes: int = MAX_HEADER_BYTES
    header_timeout_seconds: float = HEADER_TIMEOUT_SECONDS
    max_connections: int = MAX_CONNECTIONS


def uvicorn_options(limits: EdgeLimits | None = None) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` that enforce ``limits``."""
    protocol = type("EdgeHttpProtocol", (EdgeHttpProtocol,), {"limits": limits or EdgeLimits()})
    return {"http": protocol}


def _raw_response(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: " + str(len(text)).encode("ascii") + b"\r\nconnection: close\r\n\r\n"
    ) + text


_TOO_LARGE = _raw_response(
    b"431 Request Header Fields Too Large",
    b"request header fields exceed %d bytes" % MAX_HEADER_BYTES,
)
_BUSY = _raw_response(b"503 Service Unavailable", b"too many connections")


class _HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request already answered 431."""


class EdgeHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of :class:`EdgeLimits` (module doc)."""

    limits: ClassVar[EdgeLimits] = EdgeLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Bytes the current request's head may still take; None once its headers are complete.
        self._head_budget: int | None = self.limits.max_header_bytes
        self._reading_head = False
        # Set when a request completes: the next one may begin in the rest of the same packet,
        # whose bytes were counted for the one before. Such a head's size is recomputed.
        self._head_uncounted = False
        self._head_timer: asyncio.TimerHandle | None = None

    # -- connection --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            transport.write(_BUSY)
            transport.close()
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        budget = self._head_budget
        if budget is None or len(data) <= budget:
            if budget is not None:
                self._head_budget = budget - len(data)
            self._feed(data)
        else:
            self._feed_over_budget(data)
        if not self._reading_head:
            self._head_uncounted = False
        elif self._head_timer is None and not self.transport.is_closing():
            self._arm_head_timer()

    def _feed_over_budget(self, data: bytes) -> None:
        """Feed ``data`` (more than the head's allowance) without buffering past the cap."""
        view = memoryview(data)
        while view:
            budget = self._head_budget
            if budget is None or len(view) <= budget:
                if budget is not None:
                    self._head_budget = budget - len(view)
                self._feed(view)
                return
            if budget == 0:
                self._refuse_too_large()
                return
            self._head_budget = 0
            self._feed(view[:budget])
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return
            view = view[budget:]

    def _feed(self, data: bytes | memoryview) -> None:
        # uvicorn's data_received, less its keep-alive reset (done once by the caller), and
        # aware of the 431 a callback may already have sent.
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadersTooLarge):
                return
            self._bad_request()
        except httptools.HttpParserError:
            self._bad_request()
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def _bad_request(self) -> None:
        message = "Invalid HTTP request received."
        self.logger.warning(message)
        self.send_400_response(message)

    def _refuse_too_large(self) -> None:
        self._cancel_head_timer()
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # Pipelined behind a request still being answered: a 431 now would come before
            # that answer. Read nothing more, let it finish, then close (section 17's "or the
            # connection closed").
            self.flow.pause_reading()
            self.cycle.keep_alive = False
            return
        self.transport.write(_TOO_LARGE)
        self.transport.close()

    # -- parser callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_budget = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self._head_uncounted:
            self._head_uncounted = False
            if self._head_size() > self.limits.max_header_bytes:
                self._refuse_too_large()
                raise _HeadersTooLarge
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_budget = self.limits.max_header_bytes
        self._head_uncounted = True

    def _head_size(self) -> int:
        """The head as sent, recomputed (a pipelined request's bytes were not all counted)."""
        size = len(self.url) + _REQUEST_LINE_OVERHEAD + _HEAD_END
        for name, value in self.headers:
            size += len(name) + len(value) + _HEADER_LINE_OVERHEAD
        return size

    # -- header deadline ---------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(
            self.limits.header_timeout_seconds, self._head_deadline
        )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_deadline(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:
            # We stopped reading (a pipelined request waits for the one before): not the
            # client's delay; check again later.
            self._arm_head_timer()
            return
        self.transport.close()
