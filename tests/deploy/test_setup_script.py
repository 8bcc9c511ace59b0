"""deploy/gcp/setup.sh: shell checks, and what its --dry-run would grant.

The permissions granted on each secret must be exactly those of
``omni_secrets.adapters.gsm_permissions`` (the list next to the code that calls GSM).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omni_secrets.adapters.gsm_permissions import ANCHOR_PERMISSIONS, SECRET_PERMISSIONS
from omni_secrets.domain.catalog import Catalog

from .tools import ROOT, SETUP_SCRIPT, dry_run, flag, require_tool, run

PROJECT = "example-omni-staging"
IMAGE_TEST_SCRIPT = ROOT / "scripts" / "image_test.sh"


def test_bash_parses_it() -> None:
    result = run("bash", "-n", str(SETUP_SCRIPT))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", [SETUP_SCRIPT, IMAGE_TEST_SCRIPT])
def test_shellcheck_is_clean(script: Path) -> None:
    shellcheck = require_tool("shellcheck", "apt-get install shellcheck, or run .ci/run")
    result = run(shellcheck, str(script))
    assert result.returncode == 0, result.stdout


def test_dry_run_calls_nothing(tmp_path: Path) -> None:
    commands, calls = dry_run(tmp_path, GCP_PROJECT_ID=PROJECT)
    assert len(commands) > 10
    assert not calls.exists(), calls.read_text()


def test_custom_role_holds_exactly_the_adapters_permissions(tmp_path: Path) -> None:
    commands, _ = dry_run(tmp_path, GCP_PROJECT_ID=PROJECT)
    (create,) = [c for c in commands if c[1:5] == ["iam", "roles", "create", "omniSecretsReader"]]
    granted = (flag(create, "permissions") or "").split(",")
    assert sorted(granted) == list(SECRET_PERMISSIONS)
    assert "secretmanager.versions.list" in granted


@pytest.mark.parametrize("prefix", [None, "staging-omni-"])
def test_each_catalog_secret_gets_the_role_on_itself(tmp_path: Path, prefix: str | None) -> None:
    """Per secret, never per project; roles/secretmanager.secretAccessor (no list) nowhere."""
    settings = {"GCP_PROJECT_ID": PROJECT}
    if prefix is not None:
        settings["OMNI_GSM_SECRET_PREFIX"] = prefix
    commands, _ = dry_run(tmp_path, **settings)
    catalog_ids = {entry.gsm_secret_id for entry in Catalog(prefix or "apex-omni-")}
    role = f"projects/{PROJECT}/roles/omniSecretsReader"
    member = f"serviceAccount:omni-secrets@{PROJECT}.iam.gserviceaccount.com"
    bound = {
        c[3]
        for c in commands
        if c[1:3] == ["secrets", "add-iam-policy-binding"]
        and flag(c, "role") == role
        and flag(c, "member") == member
    }
    assert bound == catalog_ids
    created = {c[3] for c in commands if c[1:3] == ["secrets", "create"]}
    assert created == catalog_ids | {f"{prefix or 'apex-omni-'}audit-anchor"}
    assert not [c for c in commands if c[1:3] == ["projects", "add-iam-policy-binding"]]
    assert not [c for c in commands if flag(c, "role") == "roles/secretmanager.secretAccessor"]


def test_events_identity_and_subscription(tmp_path: Path) -> None:
    """Every secret publishes to the topic; the account may consume the one subscription;
    Workload Identity binds the manifests' namespace/service account."""
    commands, _ = dry_run(tmp_path, GCP_PROJECT_ID=PROJECT)
    topic = f"projects/{PROJECT}/topics/omni-secrets-gsm-events"
    catalog_ids = {entry.gsm_secret_id for entry in Catalog("apex-omni-")}
    for create in [c for c in commands if c[1:3] == ["secrets", "create"] and c[3] in catalog_ids]:
        assert flag(create, "topics") == topic
    on_subscription = [
        c for c in commands if c[1:4] == ["pubsub", "subscriptions", "add-iam-policy-binding"]
    ]
    assert {c[4] for c in on_subscription} == {"omni-secrets-gsm-events"}
    # consume (streaming pull, ack) and get (the connection probe), on the subscription only.
    assert {flag(c, "role") for c in on_subscription} == {
        "roles/pubsub.subscriber",
        "roles/pubsub.viewer",
    }
    (workload,) = [c for c in commands if flag(c, "role") == "roles/iam.workloadIdentityUser"]
    assert (
        flag(workload, "member")
        == f"serviceAccount:{PROJECT}.svc.id.goog[omni-secrets/omni-secrets]"
    )


def test_key_secrets_only_on_request_and_access_only(tmp_path: Path) -> None:
    """The gsm-csi key secrets appear only with OMNI_KEYS_FROM_GSM=true; the CSI driver only
    reads them, so they get access, not list."""
    (tmp_path / "default").mkdir()
    (tmp_path / "keys").mkdir()
    without, _ = dry_run(tmp_path / "default", GCP_PROJECT_ID=PROJECT)
    assert not [c for c in without if "omni-secrets-integrity-key" in c]
    with_keys, _ = dry_run(tmp_path / "keys", GCP_PROJECT_ID=PROJECT, OMNI_KEYS_FROM_GSM="true")
    for key in ("omni-secrets-breakglass-private-key", "omni-secrets-integrity-key"):
        grants = [c for c in with_keys if c[1:4] == ["secrets", "add-iam-policy-binding", key]]
        assert [flag(c, "role") for c in grants] == ["roles/secretmanager.secretAccessor"]


@pytest.mark.parametrize(
    ("args", "settings", "message"),
    [
        ([], {}, "GCP_PROJECT_ID is required"),
        (["--bogus"], {"GCP_PROJECT_ID": PROJECT}, "unknown argument '--bogus'"),
        ([], {"GCP_PROJECT_ID": "Not_A_Project"}, "is not a valid project id"),
        ([], {"GCP_PROJECT_ID": PROJECT, "OMNI_KEYS_FROM_GSM": "yes"}, "must be true or false"),
        (
            [],
            {
                "GCP_PROJECT_ID": PROJECT,
                "OMNI_PUBSUB_SUBSCRIPTION": "projects/other/subscriptions/s1",
            },
            "is in project other",
        ),
        ([], {"GCP_PROJECT_ID": PROJECT, "OMNI_VERSION_DESTROY_TTL_DAYS": "7d"}, "whole number"),
        (
            [],
            {"GCP_PROJECT_ID": PROJECT, "OMNI_ROTATION_WARNING_DAYS": "400"},
            "must be less than",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], settings: dict[str, str], message: str
) -> None:
    env = {"PATH": os.environ["PATH"], **settings}
    result = run("bash", str(SETUP_SCRIPT), "--dry-run", *args, env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


def test_each_secret_gets_gsms_reminder_and_a_destroy_ttl(tmp_path: Path) -> None:
    """Contract section 15: next rotation = period - warning from now, then daily; destroyed
    versions wait 7 days (DISABLED, recoverable) by default."""
    from datetime import UTC, datetime, timedelta

    commands, _ = dry_run(tmp_path, GCP_PROJECT_ID=PROJECT)
    catalog_ids = {entry.gsm_secret_id for entry in Catalog("apex-omni-")}
    creates = [c for c in commands if c[1:3] == ["secrets", "create"] and c[3] in catalog_ids]
    assert len(creates) == 5
    expected = datetime.now(UTC) + timedelta(days=335)
    for create in creates:
        at = datetime.fromisoformat(
            (flag(create, "next-rotation-time") or "").replace("Z", "+00:00")
        )
        assert abs(at - expected) < timedelta(minutes=5), create
        assert flag(create, "rotation-period") == "86400s"
        assert flag(create, "version-destroy-ttl") == "604800s"


def test_reminder_and_ttl_follow_the_settings(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    commands, _ = dry_run(
        tmp_path,
        GCP_PROJECT_ID=PROJECT,
        OMNI_ROTATION_PERIOD_DAYS="90",
        OMNI_ROTATION_WARNING_DAYS="14",
        OMNI_VERSION_DESTROY_TTL_DAYS="30",
    )
    (create,) = [c for c in commands if c[1:4] == ["secrets", "create", "apex-omni-api-key"]]
    at = datetime.fromisoformat((flag(create, "next-rotation-time") or "").replace("Z", "+00:00"))
    assert abs(at - (datetime.now(UTC) + timedelta(days=76))) < timedelta(minutes=5)
    assert flag(create, "version-destroy-ttl") == f"{30 * 86400}s"


def test_the_anchor_secret_and_its_own_narrow_grant(tmp_path: Path) -> None:
    """Contract section 17: <prefix>audit-anchor, no topics, no versions; secrets.update (and
    get) bound on that secret only, through a role of its own."""
    commands, _ = dry_run(tmp_path, GCP_PROJECT_ID=PROJECT, OMNI_GSM_SECRET_PREFIX="stg-")
    (create,) = [c for c in commands if c[1:4] == ["secrets", "create", "stg-audit-anchor"]]
    assert flag(create, "topics") is None and flag(create, "next-rotation-time") is None
    assert not [c for c in commands if c[1:3] == ["secrets", "versions"]]
    (role,) = [
        c for c in commands if c[1:5] == ["iam", "roles", "create", "omniSecretsAnchorWriter"]
    ]
    assert sorted((flag(role, "permissions") or "").split(",")) == sorted(ANCHOR_PERMISSIONS)
    assert sorted(ANCHOR_PERMISSIONS) == [
        "secretmanager.secrets.get",
        "secretmanager.secrets.update",
    ]
    anchor_role = f"projects/{PROJECT}/roles/omniSecretsAnchorWriter"
    bound = [c for c in commands if flag(c, "role") == anchor_role]
    assert [c[1:4] for c in bound] == [["secrets", "add-iam-policy-binding", "stg-audit-anchor"]]
    reader = f"projects/{PROJECT}/roles/omniSecretsReader"
    assert not [c for c in commands if c[3:4] == ["stg-audit-anchor"] and flag(c, "role") == reader]


def test_prints_the_settings_the_service_needs(tmp_path: Path) -> None:
    """The project number and the subscription as the service takes it (a full path), also when
    the subscription was given as a path."""
    env = {
        "PATH": os.environ["PATH"],
        "GCP_PROJECT_ID": PROJECT,
        "GCP_PROJECT_NUMBER": "123456789012",
        "OMNI_PUBSUB_SUBSCRIPTION": f"projects/{PROJECT}/subscriptions/omni-events",
    }
    result = run("bash", str(SETUP_SCRIPT), "--dry-run", env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "OMNI_GCP_PROJECT_NUMBER=123456789012" in lines  # pragma: allowlist secret
    assert f"OMNI_PUBSUB_SUBSCRIPTION=projects/{PROJECT}/subscriptions/omni-events" in lines
    assert f"GCP_PROJECT_ID={PROJECT}" in lines
    # gcloud gets the id
    assert any(line.startswith("gcloud pubsub subscriptions create omni-events ") for line in lines)
    assert "step 3" in lines[-1]


@pytest.mark.parametrize(
    "settings",
    [
        {"GCP_PROJECT_ID": "omni-dev"},
        {"GCP_PROJECT_ID": PROJECT, "OMNI_GSM_ENDPOINT": "127.0.0.1:8085"},
    ],
)
def test_refuses_a_shell_with_the_dev_env_unless_told(settings: dict[str, str]) -> None:
    """`source .omni-dev/env` then setup.sh: refused (exit 2, one line, nothing printed)."""
    env = {"PATH": os.environ["PATH"], **settings}
    refused = run("bash", str(SETUP_SCRIPT), "--dry-run", env=env)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1
    assert "sourced .omni-dev/env?" in refused.stderr and "--allow-dev-env" in refused.stderr
    allowed = run("bash", str(SETUP_SCRIPT), "--dry-run", "--allow-dev-env", env=env)
    assert allowed.returncode == 0, allowed.stderr
    assert f"GCP_PROJECT_ID={settings['GCP_PROJECT_ID']}" in allowed.stdout.splitlines()
