"""``reload_on_sighup``: SIGHUP calls the reload while the context is open, and only then."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

from structlog.testing import capture_logs

from omni_secrets.api.reload_signal import reload_on_sighup


class TestReloadOnSighup:
    async def test_sighup_calls_reload_and_the_handler_is_removed_after(self) -> None:
        """Each SIGHUP runs the reload on the loop; leaving the context restores the default."""
        calls: list[int] = []
        called = asyncio.Event()

        def reload() -> None:
            calls.append(1)
            called.set()

        with reload_on_sighup(reload) as installed:
            assert installed is True
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(called.wait(), timeout=5)
            called.clear()
            os.kill(os.getpid(), signal.SIGHUP)
            await asyncio.wait_for(called.wait(), timeout=5)
        assert len(calls) == 2
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL

    def test_outside_the_main_thread_it_says_so(self) -> None:
        """In a worker thread no handler can be installed: it yields False and logs why."""
        seen: list[bool] = []

        async def inside() -> None:
            with reload_on_sighup(lambda: None) as installed:
                seen.append(installed)

        with capture_logs() as logs:
            worker = threading.Thread(target=lambda: asyncio.run(inside()))
            worker.start()
            worker.join(timeout=10)
        assert seen == [False]
        assert logs[-1]["event"] == "reload_signal.unavailable"
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
