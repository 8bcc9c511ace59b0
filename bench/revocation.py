"""GSM revocation and VERSION_ADD reaching every replica (contract section 12, design targets).

Real processes only: PostgreSQL (a throwaway database on ``OMNI_TEST_DATABASE_URL``), Google's
Pub/Sub emulator, ``omni-secrets emulator --pubsub-topic`` (the GSM emulator publishing GSM-format
notifications) and two ``omni-secrets serve`` replicas sharing the one subscription and database.

Per trial: the active version of ``api_secret`` is disabled through the official GSM client; both
replicas' status is polled (every 10 ms each) until ``api_secret`` is not served with
``lastError.code`` ``VERSION_DISABLED``; the time from the disable call to that observation is
the sample (polling adds up to 10 ms). Then the version is enabled again and the trial waits
until both serve it. Targets: p99 < 1 s on both. A ``SECRET_VERSION_ADD`` is timed the same way
until both show ``rotation.candidateVersion``. A manual refresh on replica A is timed until
``GET …/refresh/{id}`` on A reports ``succeeded`` for both, against one GSM access round trip
measured with the official client in the same run.

Skipped (with the reason) when PostgreSQL or the Pub/Sub emulator is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench._stats import percentile

PROJECT = "omni-bench"
SECRET = f"projects/{PROJECT}/secrets/apex-omni-api-secret"
HS256 = "fake-bench-hs256-secret-0123456789abcdef"
POLL_SECONDS = 0.01
TRIAL_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class RevocationResult:
    skipped: str | None = None
    trials: int = 0
    revoke_ms: tuple[list[float], list[float]] = ([], [])
    candidate_ms: tuple[float, float] = (0.0, 0.0)
    refresh_ms: float = 0.0
    gsm_round_trip_ms: float = 0.0
    notify_ms: float = 0.0
    refresh_server_ms: float = 0.0

    def p(self, replica: int, fraction: float) -> float:
        return percentile(sorted(self.revoke_ms[replica]), fraction)

    @property
    def worst_p99(self) -> float:
        return max(self.p(0, 0.99), self.p(1, 0.99))


def _free_port() -> int:
    from tests.ports import free_port

    return free_port()


@contextmanager
def _processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _token() -> str:
    from omni_secrets.api.auth import mint_hs256_token

    return mint_hs256_token(
        secret=HS256,
        scopes=("omni-secrets:read", "omni-secrets:refresh"),
        subject="bench",
        audience="omni-secrets",
        now=datetime.now(UTC),
        ttl=timedelta(hours=1),
    )


def run(*, quick: bool = False) -> RevocationResult:
    trials = 5 if quick else 20
    database = os.environ.get("OMNI_TEST_DATABASE_URL")
    if not database:
        return RevocationResult(skipped="OMNI_TEST_DATABASE_URL is not set (PostgreSQL needed)")
    from tests.pubsub_emulator import PubSubEmulator, emulator_missing_reason

    reason = emulator_missing_reason()
    if reason is not None:
        return RevocationResult(skipped=reason)
    from tests.integration.db.conftest import PostgresDatabases

    databases = PostgresDatabases(database)
    with tempfile.TemporaryDirectory() as tmp:
        pubsub = PubSubEmulator(Path(tmp) / "pubsub")
        pubsub.start()
        try:
            url = databases.create()
            return _run(Path(tmp), url, pubsub.host, trials)
        finally:
            pubsub.stop()
            databases.close()


def _run(tmp: Path, database_url: str, pubsub_host: str, trials: int) -> RevocationResult:
    import grpc
    from google.cloud import pubsub_v1, secretmanager_v1
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    bin_dir = Path(sys.executable).parent
    cli = str(bin_dir / "omni-secrets")
    topic = f"projects/{PROJECT}/topics/gsm-events"
    subscription = f"projects/{PROJECT}/subscriptions/omni-{uuid.uuid4().hex[:8]}"
    seed = tmp / "seed.json"
    seed.write_text(
        json.dumps(
            {
                "projectId": PROJECT,
                "secrets": {
                    f"apex-omni-{name}": [f"fake-bench-{name}-v1"]
                    for name in ("api-key", "api-secret", "api-passphrase", "zk-seeds", "zk-l2-key")
                },
            }
        )
    )
    gsm_port = _free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("OMNI_", "GCP_"))}
    base_env |= {"PUBSUB_EMULATOR_HOST": pubsub_host, "GRPC_VERBOSITY": "ERROR"}
    env = base_env | {
        "OMNI_ENVIRONMENT": "test",
        "GCP_PROJECT_ID": PROJECT,
        "OMNI_GSM_ENDPOINT": f"127.0.0.1:{gsm_port}",
        "OMNI_DATABASE_URL": database_url,
        "OMNI_AUTH_HS256_SECRET": HS256,
        "OMNI_PUBSUB_SUBSCRIPTION": subscription,
        "OMNI_LOG_FORMAT": "json",
    }
    with _processes() as procs:
        gsm = subprocess.Popen(
            [
                cli,
                "emulator",
                "--port",
                str(gsm_port),
                "--seed-file",
                str(seed),
                "--pubsub-topic",
                topic,
            ],
            env=base_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(gsm)
        os.environ["PUBSUB_EMULATOR_HOST"] = pubsub_host
        publisher = pubsub_v1.PublisherClient()
        deadline = time.monotonic() + 30
        while True:  # the GSM emulator creates the topic when it starts
            try:
                publisher.get_topic(request={"topic": topic})
                break
            except Exception:
                if time.monotonic() > deadline or gsm.poll() is not None:
                    raise RuntimeError("the GSM emulator did not create its topic") from None
                time.sleep(0.2)
        subscriber = pubsub_v1.SubscriberClient()
        subscriber.create_subscription(request={"name": subscription, "topic": topic})
        for args in (["db", "upgrade"], ["db", "seed"]):
            subprocess.run([cli, *args], env=env, check=True, capture_output=True, timeout=120)
        ports = [_free_port(), _free_port()]
        for port in ports:
            serve = subprocess.Popen(
                [cli, "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            procs.append(serve)
            _wait_http(f"http://127.0.0.1:{port}/readyz", serve)
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        channel = grpc.insecure_channel(f"127.0.0.1:{gsm_port}")
        gsm_client = secretmanager_v1.SecretManagerServiceClient(
            transport=SecretManagerServiceGrpcTransport(channel=channel)
        )
        try:
            return asyncio.run(_measure(bases, gsm_client, trials, database_url))
        finally:
            gsm_client.transport.close()
            subscriber.close()


async def _measure(bases: list[str], gsm: Any, trials: int, database_url: str) -> RevocationResult:
    headers = {"Authorization": f"Bearer {_token()}"}
    async with httpx.AsyncClient(headers=headers, timeout=5) as http:

        async def api_secret(base: str) -> dict[str, Any]:
            body = (await http.get(f"{base}/ops/apex-omni/secrets/status")).json()
            return next(s for s in body["secrets"] if s["secretType"] == "api_secret")

        async def until(base: str, started: float, ok: Callable[[dict[str, Any]], bool]) -> float:
            while True:
                if ok(await api_secret(base)):
                    return (time.perf_counter() - started) * 1000
                if time.perf_counter() - started > TRIAL_TIMEOUT_SECONDS:
                    raise RuntimeError(f"{base}: not observed within {TRIAL_TIMEOUT_SECONDS} s")
                await asyncio.sleep(POLL_SECONDS)

        def revoked(s: dict[str, Any]) -> bool:
            error = s["lastError"] or {}
            return s["cacheSource"] == "none" and error.get("code") == "VERSION_DISABLED"

        def served(s: dict[str, Any]) -> bool:
            return s["cacheSource"] == "gsm"

        version = f"{SECRET}/versions/1"
        samples: tuple[list[float], list[float]] = ([], [])
        for _ in range(trials):
            await asyncio.gather(*(until(b, time.perf_counter(), served) for b in bases))
            started = time.perf_counter()
            await asyncio.to_thread(gsm.disable_secret_version, request={"name": version})
            a, b = await asyncio.gather(*(until(x, started, revoked) for x in bases))
            samples[0].append(a)
            samples[1].append(b)
            await asyncio.to_thread(gsm.enable_secret_version, request={"name": version})
        await asyncio.gather(*(until(b, time.perf_counter(), served) for b in bases))

        started = time.perf_counter()
        await asyncio.to_thread(
            gsm.add_secret_version,
            request={"parent": SECRET, "payload": {"data": b"fake-bench-api-secret-v2"}},
        )
        cand = await asyncio.gather(
            *(
                until(x, started, lambda s: s["rotation"].get("candidateVersion") == "2")
                for x in bases
            )
        )

        round_trips = []
        for _ in range(20):
            t0 = time.perf_counter()
            await asyncio.to_thread(
                gsm.access_secret_version, request={"name": f"{SECRET}/versions/1"}
            )
            round_trips.append((time.perf_counter() - t0) * 1000)

        import psycopg

        from omni_secrets.adapters.notify import CHANNEL, postgres_conninfo

        # The notify latency: POST on A until a LISTEN connection here hears A's notification.
        listener = await psycopg.AsyncConnection.connect(
            postgres_conninfo(database_url), autocommit=True
        )
        await listener.execute(f"LISTEN {CHANNEL}")
        # Queries on their own connection: the listener's is held by its notification stream.
        queries = await psycopg.AsyncConnection.connect(
            postgres_conninfo(database_url), autocommit=True
        )
        notify_samples = []
        refresh_samples = []
        server_samples: list[float] = []
        for _ in range(5):
            t0 = time.perf_counter()
            heard = asyncio.ensure_future(anext(aiter(listener.notifies())))
            posted = await http.post(
                f"{bases[0]}/internal/apex-omni/secrets/cache/refresh",
                json={"secretTypes": ["api_key"]},
            )
            request_id = posted.json()["requestId"]
            await asyncio.wait_for(heard, timeout=TRIAL_TIMEOUT_SECONDS)
            notify_samples.append((time.perf_counter() - t0) * 1000)
            while True:
                body = (
                    await http.get(
                        f"{bases[0]}/internal/apex-omni/secrets/cache/refresh/{request_id}"
                    )
                ).json()
                if body["status"] == "succeeded" and len(body["replicas"]) == 2:
                    break
                if body["status"] in ("failed", "partial"):
                    raise RuntimeError(f"refresh {body['status']}")
                await asyncio.sleep(POLL_SECONDS)
            refresh_samples.append((time.perf_counter() - t0) * 1000)
            # Server side, without our polling: queued on A -> the last replica's outcome stored.
            cursor = await queries.execute(
                "SELECT max(r.completed_at) - q.queued_at FROM omni_refresh_requests q "
                "JOIN omni_refresh_results r USING (request_id) WHERE q.request_id = %s "
                "GROUP BY q.queued_at",
                (request_id,),
            )
            row = await cursor.fetchone()
            assert row is not None
            server_samples.append(row[0].total_seconds() * 1000)
        await listener.close()
        await queries.close()

    return RevocationResult(
        trials=trials,
        revoke_ms=samples,
        candidate_ms=(cand[0], cand[1]),
        refresh_ms=percentile(sorted(refresh_samples), 0.5),
        gsm_round_trip_ms=percentile(sorted(round_trips), 0.5),
        notify_ms=percentile(sorted(notify_samples), 0.5),
        refresh_server_ms=percentile(sorted(server_samples), 0.5),
    )
