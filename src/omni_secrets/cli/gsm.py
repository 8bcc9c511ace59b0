"""``omni-secrets gsm versions list|add|enable|disable|destroy|retire``: a secret's versions.

Uses the official client against ``OMNI_GSM_ENDPOINT`` (the emulator of ``omni-secrets dev``) or,
when unset, Google with Application Default Credentials, in the project ``GCP_PROJECT_ID``; the
secret id comes from the catalog (``OMNI_GSM_SECRET_PREFIX`` + the type). With it a rotation can
be rehearsed end to end on ``make run``: add a version to each member of a group, then
``rotation preview`` and ``rotation commit``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from omni_secrets.cli._common import EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, fail, load_settings
from omni_secrets.cli._output import console, print_json
from omni_secrets.cli._secret_input import (
    ValueFileOption,
    ValueStdinOption,
    read_value,
    require_one_source,
)
from omni_secrets.cli._target import JsonOption
from omni_secrets.domain.catalog import SecretType, parse_secret_type
from omni_secrets.domain.clock import to_rfc3339
from omni_secrets.domain.errors import SecretStoreError
from omni_secrets.domain.secret_store import VersionInfo, VersionState
from omni_secrets.service.gsm_versions import (
    AliasedVersionRefused,
    GsmVersions,
    RetireRefused,
    RetireResult,
    VersionListing,
)

T = TypeVar("T")

SecretTypeOption = Annotated[
    str,
    typer.Option(
        "--secret-type", metavar="T", help="The catalog type, e.g. api_key (not the GSM id)."
    ),
]


def _version_number(value: str) -> str:
    """A GSM version number (1, 2, …); anything else is a usage error (exit 2), not a failure."""
    if not value.isdigit() or int(value) < 1:
        raise typer.BadParameter(f"a version number such as 4 is expected, got {value!r}")
    return str(int(value))


VersionArgument = Annotated[
    str,
    typer.Argument(metavar="VERSION", help="The version number, e.g. 4.", callback=_version_number),
]


def register(app: typer.Typer) -> None:
    """Add the ``gsm`` group (with its ``versions`` subgroup) to ``app``."""
    versions = typer.Typer(
        help="List, add, enable, disable, destroy or retire versions of a catalog secret in GSM.",
        no_args_is_help=True,
    )
    versions.command("list")(list_versions)
    versions.command("add")(add_version)
    versions.command("enable")(enable_version)
    versions.command("disable")(disable_version)
    versions.command("destroy")(destroy_version)
    versions.command("retire")(retire_versions)
    group = typer.Typer(
        help="Google Secret Manager (OMNI_GSM_ENDPOINT, else Google with ADC; GCP_PROJECT_ID).",
        no_args_is_help=True,
    )
    group.add_typer(versions, name="versions")
    app.add_typer(group, name="gsm")


def list_versions(secret_type: SecretTypeOption, as_json: JsonOption = False) -> None:
    """List every version of the type's secret, newest first: state, create time, aliases.

    The version the `current` alias names is the one the service serves (marked "served");
    `previous` is the one a `rotation rollback` returns to. Read-only; never reads or prints a
    value. Exit 0; 1 the secret does not exist or access is denied; 2 bad input or
    GCP_PROJECT_ID unset; 3 GSM unreachable.

    --json prints {"secretType": "api_key", "gsmSecretId": "apex-omni-api-key",
    "servedVersion": "2", "versions": [{"version": "2", "state": "ENABLED",
    "createTime": "...", "aliases": ["current"]}]} (servedVersion null without `current`).
    """
    checked = parse_secret_type(secret_type)
    listing = _run(lambda tool: tool.listing(checked))
    if as_json:
        print_json(
            {
                "secretType": checked.value,
                "gsmSecretId": listing.secret_id,
                "servedVersion": listing.served,
                "versions": [
                    {**_version_json(v), "aliases": list(listing.aliases_of(v.version))}
                    for v in listing.versions
                ],
            }
        )
        return
    _print_listing(checked, listing)


def _print_listing(secret_type: SecretType, listing: VersionListing) -> None:
    from rich.table import Table

    table = Table(title=f"{listing.secret_id} ({secret_type.value})", box=None, pad_edge=False)
    for column in ("version", "state", "created", "aliases", "served"):
        table.add_column(column, no_wrap=True)
    style = {"ENABLED": "green", "DISABLED": "yellow", "DESTROYED": "red"}
    for v in listing.versions:
        state = v.state.value
        table.add_row(
            v.version,
            f"[{style[state]}]{state}[/]",
            to_rfc3339(v.create_time),
            ", ".join(listing.aliases_of(v.version)) or "-",
            "[bold]served[/]" if v.version == listing.served else "",
        )
    console().print(table)
    if listing.served is None:
        console().print(
            "no 'current' alias: the service serves the version pinned in its database "
            "(omni-secrets status shows it)"
        )


def add_version(
    secret_type: SecretTypeOption,
    value_file: ValueFileOption = None,
    value_stdin: ValueStdinOption = False,
    as_json: JsonOption = False,
) -> None:
    """Add a new ENABLED version to the type's secret (a rotation candidate).

    Nothing served changes: the service keeps its pinned version until `omni-secrets rotation
    preview` then `rotation commit` pin the new one. Add a version to every member of the
    rotation group (api_key, api_secret, api_passphrase together) before the preview.

    Safety: the value is never echoed or logged; prefer --value-stdin or a file with mode 0600
    over anything that lands in shell history. Exit 0 added; 1 the secret does not exist or
    access is denied; 2 bad input; 3 GSM unreachable.

    --json prints {"secretType": "api_key", "gsmSecretId": "apex-omni-api-key",
    "version": "2", "state": "ENABLED", "createTime": "..."}.
    """
    checked = parse_secret_type(secret_type)
    require_one_source(value_file, value_stdin)
    value = read_value(value_file)
    added = _run(lambda tool: tool.add(checked, value))
    _print_version(checked, added, "added", as_json=as_json)


def enable_version(
    secret_type: SecretTypeOption, version: VersionArgument, as_json: JsonOption = False
) -> None:
    """Enable one version of the type's secret (it can be served or previewed again).

    Exit 0; 1 unknown version, destroyed version or access denied; 2 bad input; 3 GSM
    unreachable.

    --json prints {"secretType": "api_key", "gsmSecretId": "apex-omni-api-key",
    "version": "1", "state": "ENABLED", "createTime": "..."}.
    """
    checked = parse_secret_type(secret_type)
    changed = _run(lambda tool: tool.set_state(checked, version, VersionState.ENABLED))
    _print_version(checked, changed, "enabled", as_json=as_json)


ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Also when an alias (current: the served version; previous) names the version.",
    ),
]


def disable_version(
    secret_type: SecretTypeOption,
    version: VersionArgument,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Disable one version of the type's secret (reversible with `enable`).

    Safety: refuses, changing nothing, a version that an alias names: `current` is the version
    the service serves (disabling it makes that type fail closed at its next read from GSM) and
    `previous` is where `rotation rollback` goes. --force disables it anyway. Exit 0; 1 refused
    (aliased), unknown or destroyed version, access denied; 2 bad input; 3 GSM unreachable.

    --json prints {"secretType": "api_key", "gsmSecretId": "apex-omni-api-key",
    "version": "1", "state": "DISABLED", "createTime": "..."}.
    """
    checked = parse_secret_type(secret_type)
    try:
        changed = _run(
            lambda tool: tool.set_state(checked, version, VersionState.DISABLED, force=force)
        )
    except AliasedVersionRefused as exc:
        fail(str(exc), code=EXIT_FAILED)
    _print_version(checked, changed, "disabled", as_json=as_json)


def destroy_version(
    secret_type: SecretTypeOption,
    version: VersionArgument,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Destroy one version of the type's secret: irreversible, its value is gone.

    Where the secret has a version_destroy_ttl (deploy/gcp/setup.sh sets 7 days) GSM disables
    the version now and destroys it when the TTL passes; `enable` before then cancels it.
    Safety: refuses, changing nothing, a version that an alias (current, previous) names unless
    --force. Revoke the key at ApeX Omni first. Exit 0; 1 refused (aliased), unknown or already
    destroyed version, access denied; 2 bad input; 3 GSM unreachable.

    --json prints {"secretType": "api_key", "gsmSecretId": "apex-omni-api-key",
    "version": "1", "state": "DESTROYED" (or "DISABLED" while scheduled), "createTime": "..."}.
    """
    checked = parse_secret_type(secret_type)
    try:
        changed = _run(lambda tool: tool.destroy(checked, version, force=force))
    except AliasedVersionRefused as exc:
        fail(str(exc), code=EXIT_FAILED)
    scheduled = changed.state is not VersionState.DESTROYED
    _print_version(
        checked, changed, "scheduled destruction of" if scheduled else "destroyed", as_json=as_json
    )


DestroyOption = Annotated[
    bool,
    typer.Option(
        "--destroy",
        help="Destroy (irreversible) instead of disable; delayed where the secret has a TTL.",
    ),
]


def retire_versions(
    secret_type: SecretTypeOption, destroy: DestroyOption = False, as_json: JsonOption = False
) -> None:
    """Disable every ENABLED version of the type's secret that no alias names.

    With --destroy, destroy every version no alias names instead (GSM's delayed destruction
    applies where the secret has a version_destroy_ttl). Never touches a version an alias
    (current, previous) names; refuses, changing nothing, when the secret has no `current`
    alias. Running it again changes nothing. Revoke the old keys at ApeX Omni first.

    Exit 0 done (also when nothing was left to retire); 1 no `current` alias, the aliases moved
    meanwhile, the secret does not exist or access is denied; 2 bad input; 3 GSM unreachable.

    --json prints {"secretType": "api_key", "gsmSecretId": "apex-omni-api-key",
    "aliases": {"current": "3", "previous": "2"}, "disabled": ["1"], "destroyed": []}.
    """
    checked = parse_secret_type(secret_type)
    try:
        result = _run(lambda tool: tool.retire(checked, destroy=destroy))
    except RetireRefused as exc:
        fail(str(exc), code=EXIT_FAILED)
    _print_retired(checked, result, as_json=as_json)


def _print_retired(secret_type: SecretType, result: RetireResult, *, as_json: bool) -> None:
    if as_json:
        print_json(
            {
                "secretType": secret_type.value,
                "gsmSecretId": result.secret_id,
                "aliases": dict(result.aliases),
                "disabled": list(result.disabled),
                "destroyed": list(result.destroyed),
            }
        )
        return
    kept = ", ".join(f"{alias}={version}" for alias, version in sorted(result.aliases.items()))
    if not result.disabled and not result.destroyed:
        print(f"nothing to retire in {result.secret_id} (kept {kept})")
        return
    for verb, versions in (("disabled", result.disabled), ("destroyed", result.destroyed)):
        if versions:
            print(f"{verb} {result.secret_id} versions {', '.join(versions)} (kept {kept})")


def _print_version(secret_type: SecretType, info: VersionInfo, verb: str, *, as_json: bool) -> None:
    secret_id = _secret_id(secret_type)
    if as_json:
        print_json(
            {"secretType": secret_type.value, "gsmSecretId": secret_id, **_version_json(info)}
        )
        return
    print(f"{verb} {secret_id} version {info.version} ({info.state.value})")


def _version_json(info: VersionInfo) -> dict[str, Any]:
    return {
        "version": info.version,
        "state": info.state.value,
        "createTime": to_rfc3339(info.create_time),
    }


def _secret_id(secret_type: SecretType) -> str:
    from omni_secrets.domain.catalog import Catalog

    return Catalog(load_settings().gsm_secret_prefix).entry(secret_type).gsm_secret_id


def _run(action: Callable[[GsmVersions], Awaitable[T]]) -> T:
    """Build the GSM tool from the environment, run ``action`` once, close the channel."""
    import asyncio

    from omni_secrets.bootstrap import build_gsm_versions

    settings = load_settings()
    if settings.gcp_project_id is None:
        fail("GCP_PROJECT_ID is not set: it names the project holding the secrets", code=EXIT_USAGE)

    async def run() -> T:
        tool, close = build_gsm_versions(settings)
        try:
            return await action(tool)
        finally:
            await close()

    try:
        return asyncio.run(run())
    except SecretStoreError as exc:
        where = settings.gsm_endpoint or "Google Secret Manager"
        fail(
            f"GSM ({where}, project {settings.gcp_project_id}): {exc.message} [{exc.reason}]",
            code=EXIT_UNAVAILABLE if exc.transient else EXIT_FAILED,
        )
