"""``omni-secrets dev``: everything embedded, for a laptop (never for production).

Starts the GSM emulator in-process with clearly fake demo credentials, a SQLite database, a
break-glass key pair and an HS256 token secret in the data dir (made once, kept across restarts,
so earlier tokens and state stay valid), migrates and seeds, prints the URL, the break-glass
public key and one ready token per scope, then serves with console logs. Unless
``OMNI_APEX_BASE_URL`` is set, a local fake ApeX Omni server that accepts the demo credentials
answers the Omni routes, so ``/apex-omni/account`` works offline.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from omni_secrets.api.auth import Scope, mint_hs256_token
from omni_secrets.cli._common import EXIT_USAGE, fail
from omni_secrets.config import Settings, load_checked_settings
from omni_secrets.domain.breakglass import generate_private_key, load_key_pair
from omni_secrets.domain.clock import SystemClock
from omni_secrets.domain.exchange import ApexCredentials

if TYPE_CHECKING:
    from omni_secrets.testing import FakeApexServer

DEV_PROJECT = "omni-dev"
DEV_TOKEN_TTL = timedelta(hours=12)
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
    data_dir: Path = typer.Option(Path(".omni-dev"), "--data-dir", help="Where state is kept."),
) -> None:
    """Run the whole service embedded, for development (OMNI_ENVIRONMENT=development).

    Usage: omni-secrets dev [--host 127.0.0.1] [--port 8080] [--data-dir .omni-dev]

    The data dir keeps the SQLite database, the break-glass key pair and the dev token secret;
    delete it to start from scratch. Demo credentials are fake and live only in the in-process
    GSM emulator. Other OMNI_* variables from the environment still apply (e.g.
    OMNI_CACHE_TTL_SECONDS). Refuses to run with OMNI_ENVIRONMENT=production.
    """
    from omni_secrets.emulator import GsmEmulator

    if os.environ.get("OMNI_ENVIRONMENT", "development") == "production":
        fail("omni-secrets dev never runs with OMNI_ENVIRONMENT=production", code=EXIT_USAGE)
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create data dir {str(data_dir)!r}: {exc.strerror}", code=EXIT_USAGE)
    data_dir = data_dir.resolve()

    private_file, public_file = data_dir / "breakglass.key", data_dir / "breakglass.pub"
    if not private_file.exists():
        private_b64, public_b64, _ = generate_private_key()
        _write_once(private_file, private_b64)
        public_file.unlink(missing_ok=True)
        _write_once(public_file, public_b64)
    public_b64 = public_file.read_text().strip()
    load_key_pair(public_b64, private_file.read_text())  # the check serve does too
    hs256_secret = _write_once(data_dir / "token.secret", secrets.token_urlsafe(48))
    from omni_secrets.adapters.integrity_keys import create_key_file

    integrity_key = data_dir / "integrity.key"
    create_key_file(integrity_key)

    emulator = GsmEmulator()
    address = emulator.start()
    emulator.seed(
        DEV_PROJECT,
        {
            f"{os.environ.get('OMNI_GSM_SECRET_PREFIX', 'apex-omni-')}{k}": [v]
            for k, v in DEMO_SECRETS.items()
        },
    )
    fake_apex = None
    forced: dict[str, str] = {
        "OMNI_ENVIRONMENT": "development",
        "GCP_PROJECT_ID": DEV_PROJECT,
        "OMNI_GSM_ENDPOINT": address,
        "OMNI_DATABASE_URL": f"sqlite:///{data_dir / 'omni-secrets.db'}",
        "OMNI_AUTH_HS256_SECRET": hs256_secret,
        "OMNI_BREAKGLASS_PUBLIC_KEY": public_b64,
        "OMNI_BREAKGLASS_PRIVATE_KEY_FILE": str(private_file),
        "OMNI_INTEGRITY_KEY_FILE": os.environ.get("OMNI_INTEGRITY_KEY_FILE") or str(integrity_key),
        "OMNI_LOG_FORMAT": os.environ.get("OMNI_LOG_FORMAT", "console"),
    }
    if not os.environ.get("OMNI_APEX_BASE_URL"):
        # Imported here, not at module import: ``serve`` shares this package and must not load
        # the fakes.
        from omni_secrets.testing import FakeApexServer

        fake_apex = FakeApexServer(
            [
                ApexCredentials.of(
                    DEMO_SECRETS["api-key"],
                    DEMO_SECRETS["api-secret"],
                    DEMO_SECRETS["api-passphrase"],
                )
            ]
        )
        fake_apex.start()
        forced["OMNI_APEX_BASE_URL"] = fake_apex.base_url
    try:
        settings = load_checked_settings(**forced)
        _migrate_and_seed(settings)
        _print_banner(settings, host, port, fake_apex)
        from omni_secrets.cli._serving import serve_app

        serve_app(settings, host=host, port=port)
    finally:
        emulator.stop()
        if fake_apex is not None:
            fake_apex.stop()


def _migrate_and_seed(settings: Settings) -> None:
    from omni_secrets.adapters.db import migrate
    from omni_secrets.cli.db import _seed_with_gsm

    migrate.upgrade(settings.database_url)
    asyncio.run(_seed_with_gsm(settings, settings.database_url, DEV_PROJECT))
    # A data dir from before the integrity key has unsigned pins: in dev (only) we vouch for
    # them, so an old data dir keeps working.
    asyncio.run(_sign_dev_pins(settings))


async def _sign_dev_pins(settings: Settings) -> None:
    from omni_secrets.adapters import integrity_keys
    from omni_secrets.adapters.db.engine import create_engine
    from omni_secrets.adapters.db.unit_of_work import SqlUnitOfWork

    keyring = integrity_keys.load_keyring(settings.integrity_key_files)
    if keyring is None:
        return
    engine = create_engine(settings.database_url)
    try:
        async with SqlUnitOfWork(engine, clock=SystemClock(), keyring=keyring) as uow:
            await uow.metadata.sign_pins()
            await uow.commit()
    finally:
        await engine.dispose()


def _print_banner(
    settings: Settings, host: str, port: int, fake_apex: FakeApexServer | None
) -> None:
    from omni_secrets.domain.breakglass import key_id

    public_b64 = settings.breakglass_public_key or ""
    hs256_secret = (
        settings.auth_hs256_secret.get_secret_value() if settings.auth_hs256_secret else ""
    )
    now = SystemClock().now()
    print(f"omni-secrets dev: serving on http://{host}:{port}")
    print(
        f"break-glass public key: OMNI_BREAKGLASS_PUBLIC_KEY={public_b64} "
        f"(key id {key_id(base64.b64decode(public_b64))})"
    )
    if fake_apex is not None:
        print(f"ApeX Omni: local fake at {fake_apex.base_url} accepting the demo credentials")
    print(f"dev tokens (HS256, valid {int(DEV_TOKEN_TTL.total_seconds() // 3600)}h):")
    for scope in Scope:
        token = mint_hs256_token(
            secret=hs256_secret,
            scopes=[scope.value],
            subject="dev-operator",
            audience=settings.auth_audience,
            now=now,
            ttl=DEV_TOKEN_TTL,
        )
        print(f"  {scope.value:<26} {token}")
    print(
        f'try: curl -H "Authorization: Bearer $READ_TOKEN" '
        f"http://{host}:{port}/ops/apex-omni/secrets/status",
        flush=True,
    )
