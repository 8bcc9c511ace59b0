"""`omni-secrets --help` must not pay for the server, database, GSM or HTTP stacks.

Each command imports its heavy dependencies when it runs; importing the CLI (which builds every
command's help) must leave them unloaded. Checked in a fresh interpreter, since this test
process has imported most of them already.
"""

from __future__ import annotations

import json
import subprocess
import sys

from omni_secrets.catalog_seed import GsmLookup
from omni_secrets.cli import db, rotation
from omni_secrets.domain.rotation import RotationStatus

# Modules that only a running command needs; none may load with `import omni_secrets.cli`.
HEAVY_MODULES = (
    "fastapi",
    "starlette",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "grpc",
    "google.cloud",
    "google.auth",
    "httpx",
    "rich",
    "jwt",
    "cryptography",
    "prometheus_client",
    "structlog",
    # Issue 19: the configuration (pydantic-settings), the pydantic domain models, PyNaCl
    # (break-glass crypto) and asyncio load only when a command that needs them runs.
    "pydantic",
    "pydantic_settings",
    "pydantic_core",
    "nacl",
    "asyncio",
    "omni_secrets.config",
    "omni_secrets.domain.models",
    "omni_secrets.domain.break_glass",
    "omni_secrets.domain.audit_chain",
    "omni_secrets.domain.rotation",
)


def _modules_loaded_by(statement: str) -> set[str]:
    probe = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(result.stdout))


def test_importing_the_cli_loads_no_heavy_dependency() -> None:
    loaded = _modules_loaded_by("import omni_secrets.cli")
    assert "omni_secrets.cli" in loaded  # the probe really imported it
    heavy = sorted(name for name in HEAVY_MODULES if name in loaded)
    assert heavy == []


def test_building_the_help_loads_no_heavy_dependency() -> None:
    # Typer builds the click command (every option and help text) on `main()`, not on import.
    loaded = _modules_loaded_by(
        "import typer, omni_secrets.cli as cli\n"
        "from omni_secrets.cli._help import tidy_help\n"
        "tidy_help(typer.main.get_command(cli.app))"
    )
    heavy = sorted(name for name in HEAVY_MODULES if name in loaded)
    assert heavy == []


def test_every_seed_outcome_has_a_description() -> None:
    # The seed report's texts are keyed by GsmLookup values so that the CLI need not import
    # catalog_seed at start-up; a new GsmLookup member without a text would be a KeyError.
    assert set(db._LOOKUP_TEXT) == {member.value for member in GsmLookup}


def test_the_probe_sees_a_heavy_module_when_one_is_imported() -> None:
    # The probe is not vacuous: a command module importing config would be caught.
    loaded = _modules_loaded_by("import omni_secrets.cli, omni_secrets.config")
    assert {"pydantic_settings", "omni_secrets.config"} <= loaded


def test_every_rotation_status_has_an_exit_code() -> None:
    # `rotation check` keys its exit codes by RotationStatus values so that the CLI need not
    # import the rotation domain at start-up; a new member without a code would be a KeyError.
    assert set(rotation.ROTATION_CHECK_EXIT_CODES) == {member.value for member in RotationStatus}
    assert rotation.ROTATION_CHECK_EXIT_CODES == {"ok": 0, "due_soon": 1, "overdue": 2}
