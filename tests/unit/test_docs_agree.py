"""The docs agree with the code (issue 26): one runtime role name, the rotation checks, the
deploy steps in an order that works, and no token on a runbook's command line."""

from __future__ import annotations

import re
from pathlib import Path

from omni_secrets.domain.rotation.preview import CheckName

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))


def user_docs() -> list[Path]:
    docs = [p for p in (ROOT / "docs").rglob("*.md") if "verification" not in p.parts]
    return [ROOT / "README.md", ROOT / ".env.example", ROOT / "deploy" / "gcp" / "setup.sh", *docs]


def test_one_name_for_the_runtime_database_role() -> None:
    """`omni_runtime`, as deploy/k8s names it; never omni_app or omni_secrets_app."""
    kustomization = (ROOT / "deploy" / "k8s" / "base" / "kustomization.yaml").read_text()
    assert "runtime-role=omni_runtime" in kustomization
    for path in user_docs():
        text = path.read_text()
        assert not re.search(r"\bomni_app\b|\bomni_secrets_app\b", text), path


def test_the_rotation_runbook_lists_every_check() -> None:
    text = (ROOT / "docs" / "runbooks" / "rotation.md").read_text()
    assert "all five checks pass" in text and len(CheckName) == 5
    for check in CheckName:
        assert f"| `{check.value}` |" in text, check


def test_keys_are_shredded_after_they_are_uploaded() -> None:
    text = (ROOT / "docs" / "deploy-gke.md").read_text()
    shred = text.index("shred -u ./breakglass-private-key ./integrity-key")
    assert text.index("--from-file=integrity-key=./integrity-key") < shred
    assert text.index("versions add omni-secrets-integrity-key --data-file=./integrity-key") < shred
    assert text.count("shred -u") == 1


def test_setup_script_points_at_the_credentials_step() -> None:
    last = [
        line for line in (ROOT / "deploy/gcp/setup.sh").read_text().splitlines() if "Next:" in line
    ]
    assert last and "step 3" in last[-1]


def test_runbooks_never_put_a_token_on_the_command_line() -> None:
    for path in [*RUNBOOKS, ROOT / "docs" / "omni-secrets.md", ROOT / "docs" / "deploy-gke.md"]:
        text = path.read_text()
        assert not re.search(r'--token\s+"?\$', text), path
        assert not re.search(r"Bearer\s+\$", text), path
