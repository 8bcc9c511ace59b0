"""A TCP proxy a test controls, to put a database (or any server) behind a fault.

Modes (:attr:`FaultProxy.mode`, switchable at any time):

- ``up``: bytes are forwarded both ways.
- ``refuse``: new connections are closed at once and open ones are cut (a refused database).
- ``hang``: connections are accepted and kept open but nothing is forwarded either way (a
  partition: the client's writes succeed, no answer ever comes). Back to ``up``, the bytes held
  meanwhile are dropped with their connections: a partition loses what was in flight.

Usage::

    async with FaultProxy("127.0.0.1", 5432) as proxy:
        url = proxy.rewrite(database_url)  # same URL, host and port of the proxy
        proxy.mode = "hang"

:class:`ThreadedFaultProxy` runs the same proxy on its own event loop thread, for tests whose
service runs in another process or loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Literal, Self

from sqlalchemy.engine import make_url

Mode = Literal["up", "refuse", "hang"]
_CHUNK = 65536


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port`` unless told otherwise.

    Args:
        target_host: where the real server listens.
        target_port: its port.
        mode: the starting mode.
    """

    def __init__(self, target_host: str, target_port: int, *, mode: Mode = "up") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self._mode: Mode = mode
        self._server: asyncio.Server | None = None
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._resumed = asyncio.Event()
        if mode == "up":
            self._resumed.set()
        self.port = 0
        self.connections = 0

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, mode: Mode) -> None:
        self._mode = mode
        if mode == "up":
            self._resumed.set()
            return
        self._resumed.clear()
        self._cut_all()  # a refusal or a partition: what was open is gone (or stalled)

    def rewrite(self, url: str) -> str:
        """``url`` with its host and port replaced by the proxy's."""
        return (
            make_url(url)
            .set(host="127.0.0.1", port=self.port)
            .render_as_string(hide_password=False)
        )

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut_all()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _cut_all(self) -> None:
        for client, upstream in list(self._links):
            if self._mode == "hang":
                continue  # kept open, just no longer forwarded (see _pipe)
            client.close()
            upstream.close()
        if self._mode == "refuse":
            self._links.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._mode == "refuse":
            writer.close()
            return
        if self._mode == "hang":
            await self._hold(reader, writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.close()
            return
        link = (writer, up_writer)
        self._links.add(link)
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        for task in pipes:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.gather(*pipes, return_exceptions=True)
        self._links.discard(link)
        writer.close()
        up_writer.close()

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Read and drop whatever the client sends until the proxy is up again, then cut.
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while self._mode == "hang":
                read = asyncio.ensure_future(reader.read(_CHUNK))
                resumed = asyncio.ensure_future(self._resumed.wait())
                done, _ = await asyncio.wait({read, resumed}, return_when=asyncio.FIRST_COMPLETED)
                resumed.cancel()
                if read not in done:
                    read.cancel()
                    break
                if not read.result():
                    break
        writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                if self._mode == "hang":
                    # A partition: swallow everything until the mode changes, then cut.
                    await self._resumed.wait()
                    break
                if self._mode == "refuse":
                    break
                writer.write(data)
                await writer.drain()
        writer.close()


class ThreadedFaultProxy:
    """:class:`FaultProxy` on its own event loop in a daemon thread (a context manager)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.proxy = FaultProxy(target_host, target_port)

    @property
    def port(self) -> int:
        return self.proxy.port

    def rewrite(self, url: str) -> str:
        return self.proxy.rewrite(url)

    def set_mode(self, mode: Mode) -> None:
        """Switch the mode (from any thread); returns once it applies."""

        async def _set() -> None:
            self.proxy.mode = mode

        asyncio.run_coroutine_threadsafe(_set(), self._loop).result(timeout=5)

    def __enter__(self) -> Self:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.proxy.start(), self._loop).result(timeout=5)
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.proxy.stop(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
