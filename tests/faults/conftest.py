"""``make faults`` (contract section 18): the module-scoped cluster every fault test shares,
and the recovery times the suite measured, printed at the end of the run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.cloud import pubsub_v1
from sqlalchemy.engine import make_url

from omni_secrets.adapters import integrity_keys
from omni_secrets.domain.break_glass import generate_private_key
from omni_secrets.emulator import GsmEmulator
from omni_secrets.emulator.events import PubSubEventPublisher
from omni_secrets.testing.fault_proxy import ThreadedFaultProxy
from tests.contract.conftest import FAKE_VALUES, PROJECT
from tests.contract.test_audit_pipeline import migrate_and_seed, serve_env
from tests.faults.cluster import RECOVERY, SKEW, Database, Replica, environ, require_tool
from tests.integration.db.conftest import PostgresDatabases

AUDIT_BUFFER_EVENTS = 200
"""A small audit buffer (``OMNI_AUDIT_BUFFER_EVENTS``) so a partition fills it in seconds."""


@dataclass
class Cluster:
    """Two replicas (``b`` skewed 10 minutes ahead) and the faults the suite controls."""

    a: Replica
    b: Replica
    db: Database
    db_proxy: ThreadedFaultProxy
    pubsub_proxy: ThreadedFaultProxy
    gsm: GsmEmulator
    env: dict[str, str]
    break_glass_public_key: str
    break_glass_key_id: str

    @property
    def replicas(self) -> tuple[Replica, Replica]:
        return self.a, self.b

    def ensure_running(self) -> None:
        """Start again whatever replica a previous test stopped, and wait until it is ready."""
        for replica in self.replicas:
            if not replica.alive():
                replica.start()
        for replica in self.replicas:
            replica.wait_ready()


@pytest.fixture(scope="session")
def cluster(
    postgres_url: str, pubsub_emulator: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    require_tool("faketime")
    require_tool("wrk")
    work = tmp_path_factory.mktemp("faults")
    databases = PostgresDatabases(postgres_url)
    direct = databases.create()
    url = make_url(direct)
    suffix = uuid.uuid4().hex[:10]
    topic = f"projects/{PROJECT}/topics/gsm-faults-{suffix}"
    subscription = f"projects/{PROJECT}/subscriptions/omni-faults-{suffix}"
    pubsub_host, pubsub_port = pubsub_emulator.rsplit(":", 1)
    with (
        environ(PUBSUB_EMULATOR_HOST=pubsub_emulator),
        ThreadedFaultProxy(url.host or "127.0.0.1", url.port or 5432) as db_proxy,
        ThreadedFaultProxy(pubsub_host, int(pubsub_port)) as pubsub_proxy,
    ):
        publisher = PubSubEventPublisher(topic)  # the GSM emulator publishes directly
        subscriber = pubsub_v1.SubscriberClient()
        # As deploy/gcp/setup.sh creates it: a 10 s ack deadline (the emulator applies the
        # subscription's deadline to streaming pulls; Pub/Sub also the stream's own).
        subscriber.create_subscription(
            request={"name": subscription, "topic": topic, "ack_deadline_seconds": 10}
        )
        subscriber.close()
        gsm = GsmEmulator(events=publisher.publish)
        gsm.start()
        gsm.seed(PROJECT, {k: [v] for k, v in FAKE_VALUES.items()})
        key_file = Path(work) / "integrity.key"
        integrity_keys.create_key_file(key_file)
        private_b64, public_b64, key_id = generate_private_key()
        bg_key = Path(work) / "breakglass.key"
        bg_key.write_text(private_b64 + "\n")
        bg_key.chmod(0o600)
        migrate_and_seed(serve_env(direct, gsm, str(key_file)))
        env = serve_env(db_proxy.rewrite(direct), gsm, str(key_file))
        env.update(
            OMNI_PUBSUB_SUBSCRIPTION=subscription,
            PUBSUB_EMULATOR_HOST=f"127.0.0.1:{pubsub_proxy.port}",
            OMNI_AUDIT_BUFFER_EVENTS=str(AUDIT_BUFFER_EVENTS),
            OMNI_BREAKGLASS_PUBLIC_KEY=public_b64,
            OMNI_BREAKGLASS_PRIVATE_KEY_FILE=str(bg_key),
            OMNI_DATABASE_TIMEOUT_SECONDS="3",
        )
        cluster = Cluster(
            a=Replica("replica-a", env),
            b=Replica("replica-b", env, skew=SKEW),
            db=Database(direct),
            db_proxy=db_proxy,
            pubsub_proxy=pubsub_proxy,
            gsm=gsm,
            env=env,
            break_glass_public_key=public_b64,
            break_glass_key_id=key_id,
        )
        try:
            cluster.ensure_running()
            yield cluster
        finally:
            db_proxy.set_mode("up")
            pubsub_proxy.set_mode("up")
            for replica in cluster.replicas:
                replica.kill()
            cluster.db.dispose()
            gsm.stop()
            databases.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RECOVERY:
        terminalreporter.section("fault recovery times (seconds, measured)")
        for fault, seconds in RECOVERY.items():
            terminalreporter.write_line(f"{fault:<60} {seconds:>8.2f}")
