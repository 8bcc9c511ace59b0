"""``GsmEmulator``: a real ``google.cloud.secretmanager.v1.SecretManagerService`` gRPC server.

The official package ships the proto-plus message classes but no servicer base class, so the
service is a generic handler whose per-RPC (de)serializers are those classes' ``deserialize`` /
``serialize``. RPCs outside :data:`~omni_secrets.emulator.faults.RPC_NAMES` answer UNIMPLEMENTED.
The server runs on its own threads (insecure, loopback only), so the same object serves a
synchronous test, the async app (``omni-secrets dev``) and the ``omni-secrets emulator`` command.

Handlers blocked in injected latency hold a worker thread until the latency ends (the client's
deadline does not stop a server handler), hence the generous pool; :meth:`GsmEmulator.stop`
wakes them and stops without grace.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from google.cloud.secretmanager_v1.types import resources, service
from google.iam.v1 import iam_policy_pb2

from omni_secrets.emulator.control import ControlServer
from omni_secrets.emulator.faults import CallRecord, FaultPlan
from omni_secrets.emulator.persistence import StateFile
from omni_secrets.emulator.seed import Seed
from omni_secrets.emulator.state import RpcFault, SecretManagerState, State

logger = logging.getLogger(__name__)

SERVICE_NAME = "google.cloud.secretmanager.v1.SecretManagerService"
DEFAULT_MAX_WORKERS = 64
#: How often the emulator does what is due (scheduled destructions, rotation reminders) when no
#: RPC arrives; every RPC does it first anyway.
TICK_SECONDS = 1.0

_Impl = Callable[[Any], Any]


def require_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback name or address; raise ValueError otherwise.

    The emulator has no authentication and no TLS: it must not be reachable from elsewhere.
    """
    if host == "localhost":
        return host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"the emulator listens on loopback only; {host!r} is not a loopback address"
        )
    return host


def _probe_port(host: str, port: int) -> None:
    """Raise OSError naming the address when ``port`` is taken.

    gRPC reports a failed bind with a log line of its own on stderr; probing first lets the
    CLI fail with one clear line instead.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            where = join_host_port(host, port)
            raise OSError(f"cannot listen on {where}: {exc.strerror or exc}") from None


def join_host_port(host: str, port: int) -> str:
    """``host:port``, bracketing an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class GsmEmulator:
    """An in-memory Secret Manager served over gRPC, with fault injection.

    Args:
        host: loopback interface to listen on.
        port: TCP port; 0 picks a free one (see the address :meth:`start` returns).
        control_port: when not None, also start the HTTP control interface
            (:mod:`omni_secrets.emulator.control`) on this loopback port (0 picks one).
        max_workers: handler threads; each call blocked in injected latency holds one.
        now: current UTC time for ``create_time``/``destroy_time``; injectable for tests.
        events: called with (GSM event type, resource) after every change, through the RPCs
            and the Python API alike (:class:`~omni_secrets.emulator.events.PubSubEventPublisher`
            ``.publish``); its failures are logged, never raised into the call.
        state_file: when given, the state is loaded from this JSON file if it exists and the
            file is rewritten (atomically, mode 0600) after every change, so versions, states,
            aliases, etags and annotations survive a restart (``omni-secrets dev``);
            :attr:`restored` says whether it was loaded.

    TestIamPermissions answers, for a secret that exists, the permissions asked that are in
    :attr:`granted_permissions` (None, the default, grants every permission), as Secret
    Manager answers the subset the caller holds.

    Raises:
        ValueError: ``host`` is not a loopback address, or ``state_file`` holds no emulator
            state.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        control_port: int | None = None,
        max_workers: int = DEFAULT_MAX_WORKERS,
        now: Callable[[], datetime] | None = None,
        events: Callable[[str, Any], None] | None = None,
        state_file: Path | None = None,
    ) -> None:
        self._host = require_loopback(host)
        self._events = events
        self._port = port
        self._control_port = control_port
        self._max_workers = max_workers
        self.state = SecretManagerState(now)
        self.faults = FaultPlan()
        self.granted_permissions: frozenset[str] | None = None
        self.restored = False
        if state_file is not None:
            stored = StateFile(state_file)
            document = stored.read()
            if document is not None:
                self.state.load(document)
                self.restored = True
            self.state.persist_to(stored.write)
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._control: ControlServer | None = None
        self._address: str | None = None
        self._ticker: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Start serving; return the gRPC address as ``host:port``.

        Raises:
            OSError: the port cannot be bound.
            RuntimeError: already started (an emulator starts once).
        """
        with self._lifecycle:
            if self._server is not None or self._stopping.is_set():
                raise RuntimeError("GsmEmulator.start() may be called once")
            if self._port:
                _probe_port(self._host, self._port)
            executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="gsm-emulator")
            # Without this, gRPC sets SO_REUSEPORT and a second emulator on the same port would
            # silently share it, each answering some calls from its own data.
            server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
            server.add_generic_rpc_handlers((self._generic_handler(),))
            try:
                bound = server.add_insecure_port(join_host_port(self._host, self._port))
            except RuntimeError as exc:  # grpcio >= 1.60 raises instead of returning 0
                bound = 0
                cause: Exception | None = exc
            else:
                cause = None
            if not bound:
                executor.shutdown(wait=False)
                raise OSError(
                    f"cannot listen on {join_host_port(self._host, self._port)}"
                ) from cause
            server.start()
            self._server, self._executor = server, executor
            self._ticker = threading.Thread(
                target=self._tick_until_stopped, name="gsm-emulator-tick", daemon=True
            )
            self._ticker.start()
            self._address = join_host_port(self._host, bound)
            if self._control_port is not None:
                try:
                    self._control = ControlServer(self, self._host, self._control_port)
                    self._control.start()
                except BaseException:
                    self._shutdown_grpc()
                    self._address = None
                    raise
            return self._address

    def stop(self) -> None:
        """Stop at once (no grace): pending calls end with CANCELLED/UNAVAILABLE. Idempotent."""
        with self._lifecycle:
            self._stopping.set()
            if self._control is not None:
                self._control.stop()
                self._control = None
            self._shutdown_grpc()
        if self._ticker is not None:
            self._ticker.join(timeout=5)
            self._ticker = None

    def _tick_until_stopped(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            self.tick()

    def _shutdown_grpc(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> GsmEmulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """The gRPC ``host:port`` (what ``OMNI_GSM_ENDPOINT`` takes). RuntimeError before start."""
        if self._address is None:
            raise RuntimeError("the emulator is not started")
        return self._address

    @property
    def control_url(self) -> str | None:
        """``http://host:port`` of the control interface, or None when it is not running."""
        return None if self._control is None else self._control.url

    # --- data --------------------------------------------------------------------------------

    def create_secret(self, project_id: str, secret_id: str) -> None:
        """Create an empty secret (automatic replication). Raises RpcFault ALREADY_EXISTS."""
        created = self.state.create_secret(
            f"projects/{project_id}",
            secret_id,
            resources.Secret(replication={"automatic": {}}),
        )
        self._emit("SECRET_CREATE", created)

    def add_version(self, project_id: str, secret_id: str, value: str | bytes) -> int:
        """Add a version (str is UTF-8 encoded) and return its number.

        Raises:
            RpcFault: NOT_FOUND (no such secret), INVALID_ARGUMENT (over 64 KiB).
        """
        data = value.encode() if isinstance(value, str) else value
        message = self.state.add_version(
            f"projects/{project_id}/secrets/{secret_id}", resources.SecretPayload(data=data)
        )
        self._emit("SECRET_VERSION_ADD", message)
        return int(message.name.rsplit("/", 1)[1])

    def seed(self, project_id: str, secrets: Mapping[str, Sequence[str | bytes]]) -> int:
        """Create missing secrets and add the given versions in order; return versions added."""
        added = 0
        for secret_id, values in secrets.items():
            try:
                self.create_secret(project_id, secret_id)
            except RpcFault as fault:
                if fault.code is not grpc.StatusCode.ALREADY_EXISTS:
                    raise
            for value in values:
                self.add_version(project_id, secret_id, value)
                added += 1
        return added

    def apply_seed(self, seed: Seed) -> int:
        """:meth:`seed` from a parsed seed document, then its aliases.

        Raises:
            RpcFault: an alias naming a missing (NOT_FOUND) or destroyed version, or a malformed
                alias (INVALID_ARGUMENT); the versions are added by then.
        """
        added = self.seed(seed.project_id, seed.secrets)
        for secret_id, aliases in seed.aliases.items():
            self.set_aliases(seed.project_id, secret_id, aliases)
        return added

    def enable(self, project_id: str, secret_id: str, version: int | str) -> None:
        """Enable a version. Raises RpcFault NOT_FOUND / FAILED_PRECONDITION (destroyed)."""
        self._emit(
            "SECRET_VERSION_ENABLE",
            self.state.set_state(_version_name(project_id, secret_id, version), State.ENABLED, ""),
        )

    def disable(self, project_id: str, secret_id: str, version: int | str) -> None:
        """Disable a version. Raises RpcFault NOT_FOUND / FAILED_PRECONDITION (destroyed)."""
        self._emit(
            "SECRET_VERSION_DISABLE",
            self.state.set_state(_version_name(project_id, secret_id, version), State.DISABLED, ""),
        )

    def destroy(self, project_id: str, secret_id: str, version: int | str) -> None:
        """Destroy a version (its payload is cleared; later where the secret has a destroy TTL).

        Raises RpcFault as :meth:`enable`.
        """
        message = self.state.set_state(
            _version_name(project_id, secret_id, version), State.DESTROYED, ""
        )
        self._emit(_destroy_event(message), message)

    def set_aliases(self, project_id: str, secret_id: str, aliases: Mapping[str, int]) -> None:
        """Replace a secret's version aliases (as ``gcloud secrets update`` would).

        Raises:
            RpcFault: NOT_FOUND / FAILED_PRECONDITION / INVALID_ARGUMENT as UpdateSecret.
        """
        self.update_secret(
            resources.Secret(
                name=f"projects/{project_id}/secrets/{secret_id}", version_aliases=dict(aliases)
            ),
            ["version_aliases"],
        )

    def update_secret(self, secret: Any, paths: Sequence[str]) -> Any:
        """UpdateSecret from Python (``secret.etag`` compared when set); publishes SECRET_UPDATE."""
        updated = self.state.update_secret(secret, list(paths))
        self._emit("SECRET_UPDATE", updated)
        return updated

    def aliases(self, project_id: str, secret_id: str) -> dict[str, int]:
        """A secret's version aliases. Raises RpcFault NOT_FOUND."""
        secret = self.state.get_secret(f"projects/{project_id}/secrets/{secret_id}")
        return {alias: int(number) for alias, number in secret.version_aliases.items()}

    def tick(self) -> int:
        """Do what is due now (scheduled destructions, rotation reminders); return events sent.

        Runs before every RPC and every :data:`TICK_SECONDS` in the background; tests with an
        injected clock call it after moving the clock.
        """
        events = self.state.tick()
        for event_type, resource in events:
            self._emit(event_type, resource)
        return len(events)

    def enabled_payloads(self, project_id: str, secret_id: str) -> list[bytes]:
        """The payloads of every ENABLED version of a secret, newest first ([] when unknown)."""
        return self.state.enabled_payloads(project_id, secret_id)

    def version_state(self, project_id: str, secret_id: str, version: int | str) -> str:
        """``ENABLED``, ``DISABLED`` or ``DESTROYED``. Raises RpcFault NOT_FOUND."""
        message = self.state.get_version(_version_name(project_id, secret_id, version))
        return str(message.state.name)

    # --- faults and observation ----------------------------------------------------------------

    def inject_latency(self, method: str, seconds: float) -> None:
        """Delay every later call of ``method`` (an RPC name or ``*``); 0 removes the delay."""
        self.faults.inject_latency(method, seconds)

    def delay_nth(self, method: str, nth: int, seconds: float) -> None:
        """Delay only the ``nth`` later call of RPC ``method`` by ``seconds`` (see FaultPlan)."""
        self.faults.delay_nth(method, nth, seconds)

    def fail_next(self, method: str, code_name: str, count: int = 1) -> None:
        """Fail the next ``count`` calls of ``method`` (or ``*``) with status ``code_name``."""
        self.faults.fail_next(method, code_name, count)

    def corrupt_checksum_next(self, count: int = 1) -> None:
        """Send a wrong ``data_crc32c`` in the next ``count`` AccessSecretVersion responses."""
        self.faults.corrupt_checksum_next(count)

    def omit_checksum_next(self, count: int = 1) -> None:
        """Send no ``data_crc32c`` in the next ``count`` AccessSecretVersion responses."""
        self.faults.omit_checksum_next(count)

    def clear_faults(self) -> None:
        """Remove every injected latency, failure and corruption."""
        self.faults.clear_faults()

    def reset_calls(self) -> None:
        """Forget the calls seen so far."""
        self.faults.reset_calls()

    def call_count(self, method: str) -> int:
        """Calls of RPC ``method`` received so far, failed and abandoned ones included."""
        return self.faults.call_counts().get(method, 0)

    @property
    def calls(self) -> dict[str, int]:
        """Calls received so far per RPC name."""
        return self.faults.call_counts()

    @property
    def call_log(self) -> list[CallRecord]:
        """Finished calls with the status code name each ended with, in order."""
        return self.faults.finished()

    # --- gRPC plumbing -------------------------------------------------------------------------

    def _generic_handler(self) -> grpc.GenericRpcHandler:
        state = self.state
        rpcs: dict[str, tuple[Any, Any, _Impl]] = {
            "CreateSecret": (
                service.CreateSecretRequest,
                resources.Secret,
                lambda r: state.create_secret(r.parent, r.secret_id, r.secret),
            ),
            "GetSecret": (
                service.GetSecretRequest,
                resources.Secret,
                lambda r: state.get_secret(r.name),
            ),
            "AddSecretVersion": (
                service.AddSecretVersionRequest,
                resources.SecretVersion,
                lambda r: state.add_version(r.parent, r.payload),
            ),
            "GetSecretVersion": (
                service.GetSecretVersionRequest,
                resources.SecretVersion,
                lambda r: state.get_version(r.name),
            ),
            "AccessSecretVersion": (
                service.AccessSecretVersionRequest,
                service.AccessSecretVersionResponse,
                self._access,
            ),
            "ListSecretVersions": (
                service.ListSecretVersionsRequest,
                service.ListSecretVersionsResponse,
                lambda r: state.list_versions(r.parent, r.page_size, r.page_token, r.filter),
            ),
            "EnableSecretVersion": (
                service.EnableSecretVersionRequest,
                resources.SecretVersion,
                lambda r: state.set_state(r.name, State.ENABLED, r.etag),
            ),
            "DisableSecretVersion": (
                service.DisableSecretVersionRequest,
                resources.SecretVersion,
                lambda r: state.set_state(r.name, State.DISABLED, r.etag),
            ),
            "DestroySecretVersion": (
                service.DestroySecretVersionRequest,
                resources.SecretVersion,
                lambda r: state.set_state(r.name, State.DESTROYED, r.etag),
            ),
            "UpdateSecret": (
                service.UpdateSecretRequest,
                resources.Secret,
                lambda r: state.update_secret(r.secret, list(r.update_mask.paths)),
            ),
            "TestIamPermissions": (
                _Protobuf(iam_policy_pb2.TestIamPermissionsRequest),
                _Protobuf(iam_policy_pb2.TestIamPermissionsResponse),
                self._test_iam_permissions,
            ),
        }
        for rpc, event_type in _EVENTS_BY_RPC.items():
            request_type, response_type, impl = rpcs[rpc]
            rpcs[rpc] = (request_type, response_type, self._emitting(event_type, impl))
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                self._handler(name, impl),
                request_deserializer=request_type.deserialize,
                response_serializer=response_type.serialize,
            )
            for name, (request_type, response_type, impl) in rpcs.items()
        }
        return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)

    def _emitting(self, event_type: str, impl: _Impl) -> _Impl:
        def run(request: Any) -> Any:
            response = impl(request)
            if event_type == "SECRET_VERSION_DESTROY":
                self._emit(_destroy_event(response), response)
            else:
                self._emit(event_type, response)
            return response

        return run

    def _emit(self, event_type: str, resource: Any) -> None:
        if self._events is None:
            return
        try:
            self._events(event_type, resource)
        except Exception:  # a notification failure must never fail the change itself
            logger.warning("emulator.event_failed event_type=%s", event_type, exc_info=True)

    def _handler(self, method: str, impl: _Impl) -> Callable[[Any, grpc.ServicerContext], Any]:
        def handle(request: Any, context: grpc.ServicerContext) -> Any:
            admission = self.faults.admit(method)
            code = "OK"
            try:
                self.tick()
                if admission.latency and self._stopping.wait(admission.latency):
                    raise RpcFault(grpc.StatusCode.UNAVAILABLE, "the emulator is stopping")
                if admission.fail is not None:
                    raise RpcFault(admission.fail, f"injected fault: {admission.fail.name}")
                return impl(request)
            except RpcFault as fault:
                code = fault.code.name
                context.abort(fault.code, fault.message)
            except Exception:
                code = "UNKNOWN"
                raise
            finally:
                self.faults.record(method, code)

        return handle

    def _test_iam_permissions(self, request: Any) -> Any:
        self.state.get_secret(request.resource)  # NOT_FOUND / INVALID_ARGUMENT as GSM
        granted = self.granted_permissions
        return iam_policy_pb2.TestIamPermissionsResponse(
            permissions=[p for p in request.permissions if granted is None or p in granted]
        )

    def _access(self, request: Any) -> Any:
        response = self.state.access(request.name)
        if self.faults.take_corruption():
            payload = response.payload
            response.payload = resources.SecretPayload(
                data=payload.data, data_crc32c=payload.data_crc32c ^ 0x5A5A5A5A
            )
        if self.faults.take_checksum_omission():
            response.payload = resources.SecretPayload(data=response.payload.data)
        return response


class _Protobuf:
    """A plain protobuf message class (the IAM ones) with proto-plus's (de)serialize names."""

    def __init__(self, message_type: Any) -> None:
        self.deserialize = message_type.FromString
        self.serialize = message_type.SerializeToString


# GSM's event type for each mutating RPC (contract section 12).
_EVENTS_BY_RPC = {
    "CreateSecret": "SECRET_CREATE",
    "AddSecretVersion": "SECRET_VERSION_ADD",
    "EnableSecretVersion": "SECRET_VERSION_ENABLE",
    "DisableSecretVersion": "SECRET_VERSION_DISABLE",
    "DestroySecretVersion": "SECRET_VERSION_DESTROY",
    "UpdateSecret": "SECRET_UPDATE",
}


def _destroy_event(version: Any) -> str:
    """SECRET_VERSION_DESTROY, or ..._SCHEDULED when the secret's destroy TTL delays it."""
    if version.state != State.DESTROYED and "scheduled_destroy_time" in version:
        return "SECRET_VERSION_DESTROY_SCHEDULED"
    return "SECRET_VERSION_DESTROY"


def _version_name(project_id: str, secret_id: str, version: int | str) -> str:
    return f"projects/{project_id}/secrets/{secret_id}/versions/{version}"
