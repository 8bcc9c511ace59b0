"""``python -m bench._fake_apex``: the local fake ApeX Omni server in its own process.

Accepts the benchmark's fake credentials, prints ``url: http://127.0.0.1:PORT`` and serves until
SIGTERM. A process of its own so that its threads never compete for the server's GIL.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from omni_secrets.domain.exchange import ApexCredentials
from omni_secrets.testing import FakeApexServer

# Obviously fake: they exist only inside the benchmark's emulator and this fake.
FAKE_CREDENTIALS = ApexCredentials.of(
    "fake-bench-api-key", "fake-bench-api-secret", "fake-bench-api-passphrase"
)


def main() -> None:
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server = FakeApexServer([FAKE_CREDENTIALS])
    server.start()
    try:
        print(f"url: {server.base_url}", flush=True)
        stop.wait()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
