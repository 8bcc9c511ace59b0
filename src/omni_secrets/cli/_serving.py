"""Running the app under uvicorn for ``serve`` and ``dev``: logging first, then the server."""

from __future__ import annotations

import signal
from types import FrameType

from omni_secrets.config import Settings
from omni_secrets.observability.logging import Redactor, configure_logging


def serve_app(settings: Settings, *, host: str, port: int) -> None:
    """Configure logging once, build the app and serve it until interrupted."""
    import uvicorn
    from prometheus_client import disable_created_metrics

    from omni_secrets.api.app import create_app
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
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


def _exit_cleanly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
