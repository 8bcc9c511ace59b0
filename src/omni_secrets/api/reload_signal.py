"""``SIGHUP`` → reload, for as long as the app runs (the auth policy file, contract section 14)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

import structlog

log = structlog.get_logger("omni_secrets.reload_signal")


@contextlib.contextmanager
def reload_on_sighup(reload: Callable[[], object]) -> Iterator[bool]:
    """Call ``reload`` on the running loop whenever the process gets ``SIGHUP``.

    Yields whether the handler is installed: it cannot be outside the main thread (an app
    driven by a test client in a worker thread) or on a platform without ``SIGHUP``; reloads
    are then only possible by calling ``reload`` directly.
    """
    hangup = getattr(signal, "SIGHUP", None)
    loop = asyncio.get_running_loop()
    try:
        if hangup is None:
            raise NotImplementedError("no SIGHUP on this platform")
        loop.add_signal_handler(hangup, reload)
    except (NotImplementedError, RuntimeError, ValueError) as exc:
        log.warning("reload_signal.unavailable", reason=str(exc))
        yield False
        return
    try:
        yield True
    finally:
        loop.remove_signal_handler(hangup)
