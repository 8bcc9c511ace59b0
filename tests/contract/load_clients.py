"""A load generator for the audit-pipeline tests, run as its own process (not in the test's loop).

``python -m tests.contract.load_clients URL TOKEN SECONDS CLIENTS`` runs CLIENTS concurrent
clients, each sending ``GET /ops/apex-omni/secrets/status`` back to back with
``X-Request-ID: c<client>-<n>`` for SECONDS, waits for every request in flight to finish, and
prints one JSON line: ``{"ok": [...request ids answered 200...], "other": {status: count},
"errors": count}``. Correctness only: never use it to measure the server's speed (it shares
the cores).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx

STATUS = "/ops/apex-omni/secrets/status"


async def main(url: str, token: str, seconds: float, clients: int) -> None:
    ok: list[str] = []
    other: dict[str, int] = {}
    errors = 0
    deadline = time.monotonic() + seconds

    async def client(index: int) -> None:
        nonlocal errors
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as http:
            n = 0
            while time.monotonic() < deadline:
                request_id = f"c{index}-{n}"
                n += 1
                try:
                    response = await http.get(
                        STATUS,
                        headers={"Authorization": f"Bearer {token}", "X-Request-ID": request_id},
                    )
                except httpx.HTTPError:
                    errors += 1
                    continue
                if response.status_code == 200:
                    ok.append(request_id)
                else:
                    key = str(response.status_code)
                    other[key] = other.get(key, 0) + 1

    await asyncio.gather(*(client(i) for i in range(clients)))
    print(json.dumps({"ok": ok, "other": other, "errors": errors}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])))
