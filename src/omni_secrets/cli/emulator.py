"""``omni-secrets emulator``: the GSM emulator alone, for development and tests (contract §8)."""

from __future__ import annotations

import re
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from omni_secrets.cli._common import EXIT_FAILED, EXIT_USAGE, fail

if TYPE_CHECKING:
    from omni_secrets.emulator import Seed

_TOPIC_RE = re.compile(r"projects/[A-Za-z0-9._:-]{1,100}/topics/[A-Za-z][A-Za-z0-9._~%+-]{2,254}")


def register(app: typer.Typer) -> None:
    app.command("emulator")(emulator)


def emulator(
    host: Annotated[str, typer.Option(help="Loopback interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="gRPC port (0 picks a free one).")
    ] = 8085,
    control_port: Annotated[
        int, typer.Option(min=0, max=65535, help="HTTP control interface port (0 picks one).")
    ] = 0,
    seed_file: Annotated[
        Path | None,
        typer.Option(help="JSON seed file: projectId, and secrets as id -> list of values."),
    ] = None,
    pubsub_topic: Annotated[
        str | None,
        typer.Option(
            help="Publish GSM event notifications (projects/P/topics/T) to the Pub/Sub "
            "emulator named by PUBSUB_EMULATOR_HOST, for every change."
        ),
    ] = None,
) -> None:
    """Serve an in-memory Google Secret Manager over gRPC until SIGINT or SIGTERM.

    Prints `grpc: HOST:PORT` (the value for OMNI_GSM_ENDPOINT) and `control: URL`.

    The control URL is the HTTP fault-injection interface (see omni_secrets.emulator.control).

    Data lives in memory only and is lost on exit.

    Safety: no authentication and no TLS, so it listens on loopback only.

    A seed file that cannot be read or is malformed exits 2 before anything listens.

    With --pubsub-topic every change (create, add, enable, disable, destroy) is published in
    GSM's notification format (attributes eventType, secretId, versionId, dataFormat; data is
    the resource as JSON, never a payload); the topic is created when missing. It needs
    PUBSUB_EMULATOR_HOST: the emulator never publishes to Google's real Pub/Sub.
    """
    from omni_secrets.emulator import GsmEmulator

    seed = _load_seed(seed_file) if seed_file is not None else None
    publisher = None
    if pubsub_topic is not None:
        publisher = _publisher(pubsub_topic)
    try:
        server = GsmEmulator(
            host,
            port,
            control_port=control_port,
            events=publisher.publish if publisher is not None else None,
        )
    except ValueError as exc:
        fail(str(exc), code=EXIT_USAGE)
    if seed is not None:
        server.apply_seed(seed)
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            address = server.start()
        except OSError as exc:
            fail(str(exc), code=EXIT_FAILED)
        _print_started(address, server.control_url, seed, publisher)
        stop.wait()
    finally:
        server.stop()
        if publisher is not None:
            publisher.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _load_seed(seed_file: Path) -> Seed:
    """The seed file's content, or exit 2 with one line (before anything listens)."""
    from omni_secrets.emulator import SeedError, load_seed_file

    try:
        return load_seed_file(seed_file)
    except SeedError as exc:
        fail(str(exc), code=EXIT_USAGE)


def _print_started(
    address: str, control_url: str | None, seed: Seed | None, publisher: Any
) -> None:
    """What a script waiting for the emulator reads: one ``key: value`` line each, flushed."""
    print(f"grpc: {address}", flush=True)
    print(f"control: {control_url}", flush=True)
    if seed is not None:
        print(
            f"seeded {seed.version_count} versions of {len(seed.secrets)} secrets "
            f"into project {seed.project_id}",
            flush=True,
        )
    if publisher is not None:
        print(f"pubsub: {publisher.topic}", flush=True)


def _publisher(topic: str) -> Any:
    """The Pub/Sub publisher for ``--pubsub-topic``, or exit with one line why not."""
    from google.api_core import exceptions as gexc

    from omni_secrets.emulator.events import PubSubEventPublisher

    if not _TOPIC_RE.fullmatch(topic):
        fail(f"--pubsub-topic {topic!r} is not projects/PROJECT/topics/TOPIC", code=EXIT_USAGE)
    try:
        return PubSubEventPublisher(topic)
    except ValueError as exc:
        fail(str(exc), code=EXIT_USAGE)
    except gexc.GoogleAPICallError as exc:
        fail(f"cannot create the Pub/Sub topic {topic}: {type(exc).__name__}", code=EXIT_FAILED)
