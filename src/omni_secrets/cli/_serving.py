"""Running the app under uvicorn for ``serve`` and ``dev``: logging first, then the server."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from types import FrameType
from typing import Any

from omni_secrets.config import Settings
from omni_secrets.observability.logging import Redactor, configure_logging


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``, bound as uvicorn binds it (``SO_REUSEADDR``: a
    port in TIME_WAIT is free, a listener is not).

    Raises:
        OSError: the port is in use or the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve_app(
    settings: Settings, *, host: str, port: int, sock: socket.socket | None = None
) -> None:
    """Configure logging once, build the app and serve it until interrupted (on ``sock`` when
    given: bound before start-up touched anything)."""
    import uvicorn
    from prometheus_client import disable_created_metrics

    from omni_secrets.api.app import create_app
    from omni_secrets.api.http_edge import uvicorn_options
    from omni_secrets.bootstrap import Overrides

    # The *_created samples doubled every scrape's size and cost and no rule or dashboard uses
    # them (Prometheus reads them as separate gauges); process-wide, so set here at start.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    redactor = Redactor()
    configure_logging(log_format=settings.log_format.value, redactor=redactor, cache_loggers=True)
    app = create_app(settings, overrides=Overrides(redactor=redactor))
    # uvicorn shuts down gracefully on SIGTERM (the lifespan drains the audit writer), then
    # re-raises the signal to the handler that was installed before it started. With the
    # default handler that kills the process (exit -15 after a clean shutdown); this one makes
    # a completed graceful shutdown exit 0, as orchestrators expect.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    _freeze_startup_objects()
    # The header cap, header deadline and connection bound of contract section 17 go into
    # both branches: a server on a pre-bound socket must not lose them.
    if sock is None:
        uvicorn.run(
            app, host=host, port=port, log_config=None, access_log=False, **uvicorn_options()
        )
        return
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, **uvicorn_options()
    )
    _server_on(config).run(sockets=[sock])


def _server_on(config: Any) -> Any:
    """A uvicorn server that says where it listens once it serves, as ``uvicorn.run`` does (given
    a socket already bound, uvicorn says nothing)."""
    import uvicorn

    class _BoundServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started and sockets:
                host, port = sockets[0].getsockname()[:2]
                logging.getLogger("uvicorn.error").info(
                    "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", host, port
                )

    return _BoundServer(config)


def _freeze_startup_objects() -> None:
    """Keep what start-up built out of every later collection, then re-enable the collector.

    What is alive now (modules, settings, the app and its services) lives until the process
    exits: :func:`gc.freeze` moves it to the permanent generation, so no collection while
    serving rescans it (a full pass over it costs about 0.1 s). There is no ``gc.collect()``
    first: it would cost that 0.1 s for the few hundred cyclic objects start-up leaves (measured:
    663 of ~160,000, well under 1 MB), which stay frozen with the rest. Re-enables the collector
    that ``serve`` paused for its start-up (a no-op for ``dev``).
    """
    gc.freeze()
    gc.enable()


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    # Runs once the graceful shutdown is complete (the lifespan's stop steps are bounded:
    # bootstrap/start.py). Exit now rather than through SystemExit: asyncio.run would then wait
    # for every task still running, and a database call stalled on the network (a partition)
    # takes psycopg 10 s more to give up after its cancellation (contract section 18: SIGTERM
    # done within 15 s). What is buffered in the log streams is flushed first.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)
