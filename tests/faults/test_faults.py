"""``make faults``: one test per row of issue 29's table, on the real cluster (conftest).

Through every fault the suite checks the invariants of contract section 18: no audited request
answered 200 without its audit row, no revoked value served, no override ended early,
``/readyz`` always answers (within 2 s), every process exits within its grace, and the audit
chain verifies afterwards. Recovery times are recorded (``cluster.record``) and printed at the
end of the run; ``docs/benchmarks.md`` quotes them.

The tests share one cluster and run in file order; each leaves both replicas running.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from omni_secrets.api.paths import (
    BREAK_GLASS_OVERRIDE_PATH,
    BREAK_GLASS_PATH,
    CACHE_REFRESH_PATH,
    CACHE_REFRESH_REQUEST_PATH,
    STATUS_PATH,
    fill,
)
from omni_secrets.domain.break_glass import seal_payload
from tests.contract.conftest import PROJECT
from tests.contract.serving import CLI
from tests.faults.cluster import GRACE_SECONDS, Replica, Wrk, poll, record, token
from tests.faults.conftest import Cluster

pytestmark = [pytest.mark.faults, pytest.mark.postgres]

SKEW_SECONDS = 600.0
OVERRIDE_VALUE = "fake-faults-override-api-key-5c1e"
REVOKED = {"apex-omni-api-secret": "api_secret", "apex-omni-api-passphrase": "api_passphrase"}


def secret(body: dict[str, Any], secret_type: str) -> dict[str, Any]:
    return next(s for s in body["secrets"] if s["secretType"] == secret_type)


def missing_rows(cluster: Cluster, replicas: tuple[Replica, ...]) -> list[str]:
    """Request ids answered 200 on an audited route with no audit row (must stay empty)."""
    rows = cluster.db.status_views()
    return [rid for r in replicas for rid in r.audited_200s if rid not in rows]


@pytest.fixture(autouse=True)
def running(cluster: Cluster) -> None:
    cluster.db_proxy.set_mode("up")
    cluster.pubsub_proxy.set_mode("up")
    cluster.ensure_running()


class TestFaults:
    def test_two_live_replicas_count_each_other_and_measure_their_clock(
        self, cluster: Cluster
    ) -> None:
        """Row 'two live replicas': status replica.peers is 1 on each; the skewed replica
        shows its offset (+600 s), the other about 0; the gauge says the same."""
        took = poll(
            lambda: all(r.status()["replica"]["peers"] == 1 for r in cluster.replicas),
            within=15,
            what="peers counted on both replicas",
        )
        record("peers counted (both replicas see 1 peer)", took)
        offset_a = cluster.a.status()["replica"]["clockOffsetSeconds"]
        offset_b = cluster.b.status()["replica"]["clockOffsetSeconds"]
        assert abs(offset_a) < 1.0, offset_a
        assert abs(offset_b - SKEW_SECONDS) < 5.0, offset_b
        assert abs(cluster.b.metric("omni_clock_offset_seconds") - SKEW_SECONDS) < 5.0

    def test_a_replica_ten_minutes_ahead_ends_nothing_early_and_dates_from_the_database(
        self, cluster: Cluster
    ) -> None:
        """Row 'faketime +10 min': an override activated on A (10 min) is not ended by B's
        expiry job; B's registry and audit times are the database's; a cluster refresh counts
        B in and succeeds."""
        sealed = seal_payload(
            cluster.break_glass_public_key,
            secret_type="api_key",
            value=OVERRIDE_VALUE,
            issued_at=datetime.now(UTC),
        )
        activated = cluster.a.request(
            "POST",
            BREAK_GLASS_PATH,
            json={
                "secretType": "api_key",
                "keyId": cluster.break_glass_key_id,
                "ciphertext": sealed,
                "ttlSeconds": int(SKEW_SECONDS),
                "reason": "fault suite: skewed replica",
            },
        )
        assert activated.status_code in (200, 201), activated.text
        override_id = activated.json()["overrideId"]
        try:
            poll(
                lambda: secret(cluster.b.status(), "api_key")["breakGlass"]["active"],
                within=15,
                what="override seen on the skewed replica",
            )
            # Two heartbeats and several expiry checks on B: the override must survive them.
            time.sleep(8)
            for replica in cluster.replicas:
                assert secret(replica.status(), "api_key")["breakGlass"]["active"], replica.name
            ended = cluster.db.scalar(
                "SELECT end_reason FROM omni_break_glass_overrides WHERE override_id = :id",
                id=override_id,
            )
            assert ended is None, ended
            # Times B wrote are on the database's clock, not 10 minutes ahead.
            ahead = cluster.db.scalar(
                "SELECT max(extract(epoch FROM last_seen_at - clock_timestamp())) "
                "FROM omni_replicas"
            )
            assert float(ahead) < 2.0, ahead
            future_rows = cluster.db.scalar(
                "SELECT count(*) FROM omni_secret_access_events "
                "WHERE occurred_at > clock_timestamp() + interval '2 seconds'"
            )
            assert future_rows == 0
            self._refresh_counts_both(cluster)
        finally:
            revoked = cluster.a.request(
                "DELETE", fill(BREAK_GLASS_OVERRIDE_PATH, overrideId=override_id)
            )
            assert revoked.status_code in (200, 204), revoked.text

    def _refresh_counts_both(self, cluster: Cluster) -> None:
        queued = cluster.a.request("POST", CACHE_REFRESH_PATH, json={})
        assert queued.status_code == 202, queued.text
        request_id = queued.json()["requestId"]
        path = fill(CACHE_REFRESH_REQUEST_PATH, requestId=request_id)
        seen: dict[str, Any] = {}

        def finished() -> bool:
            seen.update(cluster.a.request("GET", path).json())
            return seen.get("status") in ("succeeded", "failed", "partial")

        took = poll(finished, within=30, what="cluster refresh finished")
        record("cluster refresh with one replica 10 min ahead", took)
        assert seen["status"] == "succeeded", seen
        ids = {r["replicaId"] for r in seen["replicas"]}
        assert {r.status()["replica"]["id"] for r in cluster.replicas} <= ids, seen

    def test_a_database_partition_refuses_in_time_and_loses_no_audit_row(
        self, cluster: Cluster
    ) -> None:
        """Row 'database partition': /readyz answers 503 within 2 s on both replicas, a full
        audit buffer refuses at once (503 AUDIT_UNAVAILABLE within 1 s), and every audited
        request answered 200 has its row once the database answers again."""
        bearer = token()
        before = cluster.db.status_view_count()
        loads = [Wrk(), Wrk()]
        for load, replica in zip(loads, cluster.replicas, strict=True):
            load.start(f"{replica.url}{STATUS_PATH}", bearer, seconds=8, connections=4)
        time.sleep(2)
        cluster.db_proxy.set_mode("hang")
        hung_at = time.monotonic()
        readiness: list[tuple[str, int, float]] = []
        refused: list[float] = []
        while time.monotonic() - hung_at < 7:
            for replica in cluster.replicas:
                ready = replica.readyz()
                readiness.append((replica.name, ready.status, ready.seconds))
                answer = replica.get(STATUS_PATH, timeout=5)
                if answer.status == 503:
                    assert "AUDIT_UNAVAILABLE" in answer.body, answer.body
                    refused.append(answer.seconds)
                else:
                    assert answer.status == 200, answer.body
            time.sleep(0.3)
        assert {status for name, status, _ in readiness[-2:]} == {503}, readiness[-4:]
        assert refused, "the audit buffer never filled during the partition"
        assert max(refused) < 1.0, refused
        for load in loads:
            load.join()
        cluster.db_proxy.set_mode("up")
        restored = time.monotonic()
        for replica in cluster.replicas:
            poll(lambda r=replica: r.readyz().status == 200, within=30, what="ready again")
            poll(
                lambda r=replica: r.metric("omni_audit_queue_depth") == 0,
                within=60,
                what=f"{replica.name} audit buffer drained",
            )
        record(
            "database partition (hang 7 s): ready and drained after restore",
            time.monotonic() - restored,
        )
        record("database partition: slowest /readyz during the hang", max(s for *_, s in readiness))
        record("database partition: slowest refusal with the buffer full", max(refused))
        assert missing_rows(cluster, cluster.replicas) == []
        answered = sum(load.ok for load in loads)
        written = cluster.db.status_view_count() - before
        # wrk's own 200s (no ids) are counted: every one has its row.
        assert written >= answered, (written, answered, [load.output for load in loads])
        # Background events past the (deliberately tiny) full buffer may be lost: they are
        # counted and paged (contract section 18); no answered request is among them (above).
        lost = sum(r.metric("omni_audit_events_lost_total") for r in cluster.replicas)
        record("database partition: background audit events lost (counted, paged)", lost)
        # The buffer filled under wrk too: its requests were refused, not left waiting.
        assert sum(load.non_2xx for load in loads) > 0, [load.output for load in loads]

    def test_sigterm_during_a_partition_exits_within_its_grace(self, cluster: Cluster) -> None:
        """Row 'SIGTERM during that partition': the replica exits within 15 s, code 0, and says
        once how many held events it could not write."""
        cluster.a.get(STATUS_PATH)
        cluster.db_proxy.set_mode("hang")
        try:
            held = cluster.a.get(STATUS_PATH, timeout=5)
            assert held.status == 200  # held in the buffer, not refused
            code, took = cluster.a.terminate()
        finally:
            cluster.db_proxy.set_mode("up")
        record("SIGTERM during a database partition: exit", took)
        assert took < GRACE_SECONDS, (took, cluster.a.tail())
        assert code == 0, cluster.a.tail()
        drained = [line for line in cluster.a.lines if "audit.drain_incomplete" in line]
        assert len(drained) == 1, cluster.a.tail()
        lost = json.loads(drained[0])["lost"]
        began = time.monotonic()
        cluster.a.start()
        cluster.a.wait_ready()
        # What SIGTERM could not write was counted and logged once (contract section 18); no
        # other answered request lacks its row.
        assert 1 <= len(missing_rows(cluster, (cluster.a,))) <= lost
        cluster.a.audited_200s.clear()
        record(
            "SIGTERM during a partition: replica ready again after restart",
            time.monotonic() - began,
        )

    def test_a_killed_replica_does_not_hold_back_a_revocation(self, cluster: Cluster) -> None:
        """Row 'a replica killed with a shared subscription': B is frozen (SIGSTOP, its stream
        still open, so Pub/Sub may lease the message to it), the version is disabled in GSM, B
        is killed: the survivor stops serving it within 15 s of the death."""
        for replica in cluster.replicas:
            poll(
                lambda r=replica: r.status()["events"]["connected"],
                within=20,
                what=f"{replica.name} events connected",
            )
        # Kill -9 loses what a replica still held: wait until B's answered requests are written.
        poll(
            lambda: missing_rows(cluster, (cluster.b,)) == [],
            within=20,
            what="B's audit rows written before it is frozen",
        )
        cluster.b.signal(signal.SIGSTOP)
        try:
            # Two revocations: the emulator spreads messages over the open streams, so one is
            # all but surely leased to the frozen B.
            for secret_id in REVOKED:
                cluster.gsm.disable(PROJECT, secret_id, 1)
            time.sleep(1.0)  # delivered before B dies
        finally:
            cluster.b.kill()
        cluster.b.audited_200s.clear()

        def revoked() -> bool:
            body = cluster.a.status()
            for secret_type in REVOKED.values():
                entry = secret(body, secret_type)
                error = entry["lastError"] or {}
                if error.get("code") != "VERSION_DISABLED" or entry["cacheSource"] != "none":
                    return False
            return True

        took = poll(revoked, within=40, what="revocation reached the survivor")
        record("replica killed holding a revocation: survivor revoked after", took)
        handled = [line for line in cluster.a.lines if "gsm_event" in line or "pubsub" in line]
        print("".join(handled[-12:]))  # shown when the bound is missed
        assert took <= 15.0, took
        for secret_id, secret_type in REVOKED.items():
            cluster.gsm.enable(PROJECT, secret_id, 1)
            poll(
                lambda t=secret_type: secret(cluster.a.status(), t)["cacheSource"] == "gsm",
                within=30,
                what="served again after enable",
            )

    def test_a_database_blip_loses_the_monitor_lease_for_under_a_minute(
        self, cluster: Cluster
    ) -> None:
        """Row 'a database blip': every session is cut (the lease with it); a live replica
        holds the rotation-monitor lease again within 60 s."""
        poll(cluster.db.monitor_lease_held, within=30, what="a leader before the blip")
        cluster.db_proxy.set_mode("refuse")
        poll(lambda: not cluster.db.monitor_lease_held(), within=10, what="lease lost")
        time.sleep(2)
        cluster.db_proxy.set_mode("up")
        took = poll(cluster.db.monitor_lease_held, within=75, what="lease re-taken")
        record("database blip (refuse 2 s): rotation-monitor lease re-taken after", took)
        assert took <= 60.0, took
        for replica in cluster.replicas:
            poll(lambda r=replica: r.readyz().status == 200, within=30, what="ready after blip")

    def test_serve_on_a_busy_port_exits_3_having_touched_nothing(self, cluster: Cluster) -> None:
        """Row 'serve on a busy port': exit 3 within 2 s; no replica registered."""
        rows = cluster.db.scalar("SELECT count(*) FROM omni_replicas")
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            began = time.monotonic()
            proc = subprocess.run(
                [CLI, "serve", "--port", str(port)],
                env=cluster.env,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            took = time.monotonic() - began
        record("serve on a busy port: exit 3 after", took)
        assert proc.returncode == 3, proc.stderr
        assert took < 2.0, took
        assert cluster.db.scalar("SELECT count(*) FROM omni_replicas") == rows

    def test_a_subscriber_side_partition_shows_disconnected_and_recovers_fast(
        self, cluster: Cluster
    ) -> None:
        """Row '30 s subscriber-side partition' (~11 s here): events.connected turns false while
        Pub/Sub does not answer and true again within seconds of the restore (the stream is
        replaced, not left to the client's reconnect backoff); how long an event published then
        takes to reach both replicas is measured and printed."""
        for replica in cluster.replicas:
            poll(
                lambda r=replica: r.status()["events"]["connected"],
                within=20,
                what=f"{replica.name} events connected",
            )
        cluster.pubsub_proxy.set_mode("hang")
        try:
            took = poll(
                lambda: not any(r.status()["events"]["connected"] for r in cluster.replicas),
                within=20,
                what="events.connected false during the partition",
            )
            record("subscriber partition: events.connected false after", took)
            time.sleep(3)
        finally:
            cluster.pubsub_proxy.set_mode("up")
        restored = time.monotonic()
        took = poll(
            lambda: all(r.status()["events"]["connected"] for r in cluster.replicas),
            within=20,
            what="events.connected true again",
        )
        record("subscriber partition: both streams open again after restore", took)
        published = time.monotonic()
        cluster.gsm.add_version(PROJECT, "apex-omni-zk-seeds", "fake-zk-seeds-faults-v2")

        def candidate_seen() -> bool:
            return all(
                secret(r.status(), "zk_seeds")["rotation"].get("candidateVersion") == "2"
                for r in cluster.replicas
            )

        # Measured, not asserted: usually under a second, but a message the emulator hands to a
        # stream that is going away waits for its lease to lapse (seen 30 s, and over 40 s), so
        # a bound here would flake; docs/benchmarks.md records it as not solved.
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline and not candidate_seen():
            time.sleep(0.2)
        seen = candidate_seen()
        record(
            "subscriber partition: first event after reconnect on both replicas"
            + ("" if seen else " (NOT within 45 s)"),
            time.monotonic() - published,
        )
        assert published - restored <= 15.0

    def test_afterwards_every_replica_stops_in_grace_and_the_chain_verifies(
        self, cluster: Cluster
    ) -> None:
        """Every process exits within its grace; no answered request lacks its row; the audit
        chain verifies."""
        assert missing_rows(cluster, cluster.replicas) == []
        for replica in cluster.replicas:
            code, took = replica.terminate()
            assert code == 0 and took < GRACE_SECONDS, (replica.name, code, took)
        verified = subprocess.run(
            [CLI, "audit", "verify"],
            env={**cluster.env, "OMNI_DATABASE_URL": cluster.db.url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert verified.returncode == 0, verified.stdout + verified.stderr
