"""``omni-secrets dev``: everything embedded, for a laptop (never for production).

Checks that its port is free before anything else, starts the GSM emulator in-process with
clearly fake demo credentials, a SQLite database, a break-glass key pair, an HS256 token secret
and an integrity key in the data dir (made once, kept across restarts, so earlier tokens and
state stay valid), migrates and seeds, writes ``<data-dir>/env`` (a file to ``source``: see
:func:`env_file_lines`), prints the URL, the break-glass public key and one ready token per
scope, then serves with console logs. Unless ``OMNI_APEX_BASE_URL`` is set, a local fake ApeX
Omni server answers the Omni routes and the self-test; it accepts any credential set (key,
secret, passphrase) whose versions are ENABLED in the dev emulator, so a rotation can be
rehearsed with ``omni-secrets gsm versions add`` and ``rotation preview``/``commit``.
"""

from __future__ import annotations

import base64
import itertools
import os
import secrets
import shlex
import socket
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from omni_secrets.api.scopes import Scope
from omni_secrets.cli import _dev_data
from omni_secrets.cli._common import EXIT_FAILED, EXIT_USAGE, fail
from omni_secrets.cli._target import token_env_var
from omni_secrets.domain.catalog import DEFAULT_GSM_SECRET_PREFIX
from omni_secrets.domain.clock import SystemClock
from omni_secrets.domain.exchange import ApexCredentials

if TYPE_CHECKING:
    # Annotations only (config pulls in pydantic-settings; `--help` must not pay for it).
    from omni_secrets.config import Settings
    from omni_secrets.domain.models import OmniSecretMetadata
    from omni_secrets.emulator import GsmEmulator
    from omni_secrets.testing import FakeApexServer

DEV_PROJECT = "omni-dev"
DEV_TOKEN_TTL = timedelta(hours=12)
ENV_FILE_NAME = _dev_data.ENV_FILE_NAME
INTEGRITY_KEY_FILE_NAME = "integrity.key"
# Obviously fake demo values: they exist only inside the in-process emulator.
DEMO_SECRETS: dict[str, str] = {
    "api-key": "fake-demo-api-key",
    "api-secret": "fake-demo-api-secret",
    "api-passphrase": "fake-demo-api-passphrase",
    "zk-seeds": "fake-demo-zk-seeds",
    "zk-l2-key": "fake-demo-zk-l2-key",
}


def register(app: typer.Typer) -> None:
    app.command("dev")(dev)


def _write_once(path: Path, make: str) -> str:
    """Return the file's content, creating it (mode 0600) with ``make`` the first time."""
    if path.exists():
        return path.read_text().strip()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make + "\n")
    return make


def dev(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, min=1, max=65535, help="TCP port to listen on."),
    data_dir: Path = typer.Option(
        Path(".omni-dev"), "--data-dir", metavar="DIR", help="Where state and the env file live."
    ),
    reset: bool = typer.Option(
        False, "--reset", help="Wipe the data dir (after a confirmation) instead of serving."
    ),
    yes: bool = typer.Option(False, "--yes", help="With --reset: do not ask for confirmation."),
) -> None:
    """Run the whole service embedded, for development (OMNI_ENVIRONMENT=development).

    Usage: omni-secrets dev [--host 127.0.0.1] [--port 8080] [--data-dir .omni-dev]

    Checks that the port is free before anything else (exit 2 with one line otherwise). The
    data dir keeps the SQLite database, the break-glass key pair, the dev token secret, the
    integrity key and the GSM emulator's state (gsm-emulator.json: versions, states, aliases,
    etags, annotations; fake values, mode 0600), so a restart serves what it served before.
    When the database pins a version the emulator lacks (a data dir from an older version),
    dev exits 1 with one line. `omni-secrets dev --reset` wipes the data dir after a
    confirmation (--yes skips it) and refuses a directory holding files dev did not write, or
    one a running dev still serves.
    Each start writes DATA_DIR/env (mode 0600):
    `source .omni-dev/env` exports OMNI_URL, OMNI_DATABASE_URL, OMNI_AUTH_HS256_SECRET,
    OMNI_INTEGRITY_KEY_FILE, OMNI_GSM_ENDPOINT, GCP_PROJECT_ID, OMNI_ENVIRONMENT and one
    OMNI_TOKEN_<SCOPE> per scope (e.g. OMNI_TOKEN_OMNI_SECRETS_READ), so every CLI command works
    against this service with no flags. Demo credentials are fake and live only in the
    in-process GSM emulator; the local fake ApeX accepts any credential set ENABLED there, so a
    rotation can be rehearsed (`gsm versions add`, `rotation preview`, `rotation commit`).
    Other OMNI_* variables from the environment still apply (e.g. OMNI_CACHE_TTL_SECONDS).
    Refuses to run with OMNI_ENVIRONMENT=production.
    """
    # Here, not at the top: pydantic-settings loads only when `dev` runs.
    from omni_secrets.config import load_checked_settings

    if reset:
        _dev_data.reset(data_dir, yes=yes)
        return
    if yes:
        fail("--yes goes with --reset", code=EXIT_USAGE)
    if os.environ.get("OMNI_ENVIRONMENT", "development") == "production":
        fail("omni-secrets dev never runs with OMNI_ENVIRONMENT=production", code=EXIT_USAGE)
    require_free_port(host, port)
    given_data_dir = data_dir
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create data dir {str(data_dir)!r}: {exc.strerror}", code=EXIT_USAGE)
    data_dir = data_dir.resolve()
    private_file, public_b64 = _break_glass_key_pair(data_dir)
    hs256_secret = _write_once(data_dir / "token.secret", secrets.token_urlsafe(48))
    integrity_key_file = _integrity_key_file(data_dir)
    emulator, gsm_address = _start_emulator(data_dir, given_data_dir)
    fake_apex = None
    forced: dict[str, str] = {
        "OMNI_ENVIRONMENT": "development",
        "GCP_PROJECT_ID": DEV_PROJECT,
        "OMNI_GSM_ENDPOINT": gsm_address,
        "OMNI_DATABASE_URL": f"sqlite:///{data_dir / 'omni-secrets.db'}",
        "OMNI_AUTH_HS256_SECRET": hs256_secret,
        "OMNI_BREAKGLASS_PUBLIC_KEY": public_b64,
        "OMNI_BREAKGLASS_PRIVATE_KEY_FILE": str(private_file),
        "OMNI_INTEGRITY_KEY_FILE": str(integrity_key_file),
        "OMNI_LOG_FORMAT": os.environ.get("OMNI_LOG_FORMAT", "console"),
    }
    try:
        if not os.environ.get("OMNI_APEX_BASE_URL"):
            fake_apex = _start_fake_apex(emulator)
            forced["OMNI_APEX_BASE_URL"] = fake_apex.base_url
        settings = load_checked_settings(**forced)
        _migrate_and_seed(settings)
        _require_agreement(settings, emulator, given_data_dir)
        env_file = data_dir / ENV_FILE_NAME
        _write_private(
            env_file,
            env_file_lines(settings, host, port, integrity_key_file, _dev_tokens(settings)),
        )
        _print_banner(settings, host, port, fake_apex, env_file)
        from omni_secrets.cli._serving import serve_app

        serve_app(settings, host=host, port=port)
    finally:
        emulator.stop()
        if fake_apex is not None:
            fake_apex.stop()


def _break_glass_key_pair(data_dir: Path) -> tuple[Path, str]:
    """The private key file and the public key in ``data_dir``, made the first time, checked
    to belong together as ``serve`` checks them."""
    from omni_secrets.domain.break_glass import generate_private_key, load_key_pair  # PyNaCl

    private_file, public_file = data_dir / "breakglass.key", data_dir / "breakglass.pub"
    if not private_file.exists():
        private_b64, public_b64, _ = generate_private_key()
        _write_once(private_file, private_b64)
        public_file.unlink(missing_ok=True)
        _write_once(public_file, public_b64)
    public_b64 = public_file.read_text().strip()
    load_key_pair(public_b64, private_file.read_text())
    return private_file, public_b64


def _integrity_key_file(data_dir: Path) -> Path:
    """``$OMNI_INTEGRITY_KEY_FILE`` when set, else the data dir's key (made the first time)."""
    from omni_secrets.bootstrap.database import create_integrity_key_file

    given = os.environ.get("OMNI_INTEGRITY_KEY_FILE")
    if given:
        return Path(given)
    path = data_dir / INTEGRITY_KEY_FILE_NAME
    create_integrity_key_file(path)
    return path


def _start_emulator(data_dir: Path, given_data_dir: Path) -> tuple[GsmEmulator, str]:
    """The in-process GSM emulator with the state kept in ``data_dir``, and its address.

    The first start seeds the fake demo values, each demo secret's one version named
    ``current`` (contract section 15), as a real deployment's secrets are after their first
    commit; later starts load what the last one left (a demo secret missing from it is seeded).
    The audit anchor secret (``<prefix>audit-anchor``, no versions; contract section 17) is
    created as ``setup.sh`` creates it.
    """
    import grpc

    from omni_secrets.domain.audit_anchor import anchor_secret_id
    from omni_secrets.emulator import GsmEmulator, RpcFault
    from omni_secrets.emulator.seed import Seed

    state_file = data_dir / _dev_data.EMULATOR_STATE_FILE_NAME
    try:
        emulator = GsmEmulator(state_file=state_file)
    except ValueError as exc:
        fail(
            f"cannot load the dev GSM emulator state {state_file}: {exc}; start afresh with: "
            f"{_dev_data.reset_command(given_data_dir)}",
            code=EXIT_FAILED,
        )
    address = emulator.start()
    prefix = os.environ.get("OMNI_GSM_SECRET_PREFIX", "apex-omni-")
    ids = {f"{prefix}{k}": v for k, v in DEMO_SECRETS.items()}
    wanted: dict[str, list[str]] = {
        **{secret_id: [value] for secret_id, value in ids.items()},
        anchor_secret_id(prefix): [],
    }
    for secret_id in list(wanted):
        try:
            emulator.aliases(DEV_PROJECT, secret_id)
        except RpcFault as fault:
            if fault.code is not grpc.StatusCode.NOT_FOUND:
                raise
        else:
            del wanted[secret_id]  # kept from the last start
    if not wanted:
        return emulator, address
    emulator.apply_seed(
        Seed(
            project_id=DEV_PROJECT,
            secrets=wanted,
            aliases={secret_id: {"current": 1} for secret_id in ids if secret_id in wanted},
        )
    )
    return emulator, address


def _start_fake_apex(emulator: GsmEmulator) -> FakeApexServer:
    """A local fake ApeX accepting any credential set ENABLED in ``emulator``."""
    # Imported here, not at module import: ``serve`` shares this package and must not load the
    # fakes.
    from omni_secrets.testing import FakeApexServer

    prefix = os.environ.get("OMNI_GSM_SECRET_PREFIX", "apex-omni-")
    fake_apex = FakeApexServer(
        credential_source=lambda: enabled_credential_sets(emulator, DEV_PROJECT, prefix)
    )
    fake_apex.start()
    return fake_apex


def _migrate_and_seed(settings: Settings) -> None:
    import asyncio

    from omni_secrets.bootstrap.database import upgrade_schema
    from omni_secrets.cli.db import _seed_with_gsm

    upgrade_schema(settings.database_url)
    asyncio.run(_seed_with_gsm(settings, settings.database_url, DEV_PROJECT))
    # A data dir from before the integrity key has unsigned pins: in dev (only) we vouch for
    # them, so an old data dir keeps working.
    asyncio.run(_sign_dev_pins(settings))


def _require_agreement(settings: Settings, emulator: GsmEmulator, given_data_dir: Path) -> None:
    """Exit 1 with one line when the database pins a version the emulator lacks."""
    import asyncio

    from omni_secrets.bootstrap.database import open_database

    async def pinned() -> list[OmniSecretMetadata]:
        async with open_database(settings.database_url) as uow_factory, uow_factory() as uow:
            return list(await uow.metadata.list_all())

    problem = _dev_data.first_disagreement(asyncio.run(pinned()), emulator, DEV_PROJECT)
    if problem is not None:
        emulator.stop()
        fail(
            f"{given_data_dir} disagrees with itself: {problem} (a data dir from an older "
            f"omni-secrets dev?); start afresh with: {_dev_data.reset_command(given_data_dir)}",
            code=EXIT_FAILED,
        )


async def _sign_dev_pins(settings: Settings) -> None:
    from omni_secrets.bootstrap.database import load_integrity_keyring, open_sql_unit_of_work

    keyring = load_integrity_keyring(settings)
    if keyring is None:
        return
    async with open_sql_unit_of_work(settings.database_url, keyring=keyring) as uow:
        await uow.metadata.sign_pins()
        await uow.commit()


def require_free_port(host: str, port: int) -> None:
    """Exit 2 with one line when ``host:port`` cannot be listened on (before printing anything)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # uvicorn sets SO_REUSEADDR too: a port in TIME_WAIT is free, a listener is not.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        fail(
            f"cannot listen on {_authority(host, port)}: {exc.strerror or exc} (is another "
            "omni-secrets dev running? pick another --port)",
            code=EXIT_USAGE,
        )


def enabled_credential_sets(
    emulator: GsmEmulator, project_id: str, prefix: str
) -> Iterator[ApexCredentials]:
    """Every (key, secret, passphrase) combination of versions ENABLED in the dev emulator."""
    values = [
        emulator.enabled_payloads(project_id, f"{prefix}{name}")
        for name in ("api-key", "api-secret", "api-passphrase")
    ]
    for key, secret, passphrase in itertools.product(*values):
        try:
            yield ApexCredentials.of(key.decode(), secret.decode(), passphrase.decode())
        except (UnicodeDecodeError, ValueError):
            continue


def _dev_tokens(settings: Settings) -> dict[Scope, str]:
    from omni_secrets.api.auth import mint_hs256_token  # PyJWT: only when minting

    hs256_secret = (
        settings.auth_hs256_secret.get_secret_value() if settings.auth_hs256_secret else ""
    )
    now = SystemClock().now()
    return {
        scope: mint_hs256_token(
            secret=hs256_secret,
            scopes=[scope.value],
            subject="dev-operator",
            audience=settings.auth_audience,
            now=now,
            ttl=DEV_TOKEN_TTL,
        )
        for scope in Scope
    }


def env_file_lines(
    settings: Settings,
    host: str,
    port: int,
    integrity_key_file: Path,
    tokens: dict[Scope, str],
) -> list[str]:
    """The ``<data-dir>/env`` file: ``export`` lines for every CLI command to reach this service.

    Exports ``OMNI_URL``, ``OMNI_DATABASE_URL``, ``OMNI_AUTH_HS256_SECRET``,
    ``OMNI_INTEGRITY_KEY_FILE``, ``OMNI_GSM_ENDPOINT``, ``GCP_PROJECT_ID``, ``OMNI_ENVIRONMENT``
    and one ``OMNI_TOKEN_<SCOPE>`` per scope (the scope upper-cased, every run of characters
    other than A-Z and 0-9 replaced by ``_``: ``omni-secrets:read`` ->
    ``OMNI_TOKEN_OMNI_SECRETS_READ``), which API commands use when no ``--token``,
    ``OMNI_TOKEN`` or ``OMNI_TOKEN_FILE`` is given, and puts this installation's scripts
    directory first on ``PATH``. Values are shell-quoted.
    """
    hs256_secret = (
        settings.auth_hs256_secret.get_secret_value() if settings.auth_hs256_secret else ""
    )
    exports: list[tuple[str, str]] = [
        ("OMNI_URL", f"http://{_authority(_client_host(host), port)}"),
        ("OMNI_DATABASE_URL", settings.database_url),
        ("OMNI_AUTH_HS256_SECRET", hs256_secret),
        ("OMNI_INTEGRITY_KEY_FILE", str(integrity_key_file)),
        ("OMNI_GSM_ENDPOINT", settings.gsm_endpoint or ""),
        ("GCP_PROJECT_ID", settings.gcp_project_id or DEV_PROJECT),
        ("OMNI_ENVIRONMENT", "development"),
    ]
    if settings.gsm_secret_prefix != DEFAULT_GSM_SECRET_PREFIX:
        exports.append(("OMNI_GSM_SECRET_PREFIX", settings.gsm_secret_prefix))
    exports.extend((token_env_var(scope), token) for scope, token in tokens.items())
    lines = [
        "# Written by `omni-secrets dev` for the service it is running; rewritten at each start.",
        "# Load it with: source <this file>. It holds dev credentials: keep it private (0600).",
        *(f"export {name}={shlex.quote(value)}" for name, value in exports),
    ]
    scripts = Path(sys.executable).parent
    if (scripts / "omni-secrets").exists():
        # So that a plain `omni-secrets` runs this installation (e.g. the clone's .venv).
        lines.append(f'export PATH={shlex.quote(str(scripts))}:"$PATH"')
    return lines


def _client_host(host: str) -> str:
    """The address a client on this machine uses for a server listening on ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _write_private(path: Path, lines: list[str]) -> None:
    """Replace ``path`` atomically with ``lines``, mode 0600 from the start."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _print_banner(
    settings: Settings,
    host: str,
    port: int,
    fake_apex: FakeApexServer | None,
    env_file: Path,
) -> None:
    from omni_secrets.domain.break_glass import key_id

    public_b64 = settings.breakglass_public_key or ""
    url = f"http://{_authority(_client_host(host), port)}"
    print(f"omni-secrets dev: serving on {url}")
    print(
        f"break-glass public key: OMNI_BREAKGLASS_PUBLIC_KEY={public_b64} "
        f"(key id {key_id(base64.b64decode(public_b64))})"
    )
    if fake_apex is not None:
        print(
            f"ApeX Omni: local fake at {fake_apex.base_url} accepting any credential set "
            "ENABLED in the dev GSM emulator"
        )
    print(f"dev tokens (HS256, valid {int(DEV_TOKEN_TTL.total_seconds() // 3600)}h):")
    for scope, token in _dev_tokens(settings).items():
        print(f"  {scope.value:<26} {token}")
    print(f"environment for the CLI: source {env_file}")
    print(
        f'try: source {env_file} && omni-secrets status   (or: curl -H "Authorization: Bearer '
        f'${token_env_var(Scope.READ)}" {url}/ops/apex-omni/secrets/status)',
        flush=True,
    )
