"""Each overlay's values.yaml: the project id written once, the values with no default required.

Issue 26: the overlays rendered with an empty break-glass public key and project number, and the
project id had to be edited in 18 places. Now components/project copies values.yaml's
``projectId``, ``projectNumber`` and ``breakGlassPublicKey`` everywhere they are needed, and a
missing one fails the render.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .tools import K8S, OPERATOR_VALUES, OVERLAYS, operator_copy, render_dir

PLACEHOLDERS = re.compile(r"\b(?:PROJECT_ID|PROJECT_NUMBER|BREAKGLASS_PUBLIC_KEY)\b")


def objects_of(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_shipped_overlay_does_not_render_without_the_operators_values(overlay: str) -> None:
    """Nothing is rendered with an empty public key or project number: kustomize refuses,
    naming the missing value."""
    result = render_dir(K8S / "overlays" / overlay)
    assert result.returncode != 0
    assert result.stdout == ""
    assert "data.projectNumber" in result.stderr or "data.breakGlassPublicKey" in result.stderr


@pytest.mark.parametrize("missing", ["projectNumber", "breakGlassPublicKey"])
def test_each_required_value_alone_fails_the_render(tmp_path: Path, missing: str) -> None:
    root = operator_copy(tmp_path)
    values = root / "overlays" / "staging" / "values.yaml"
    text = re.sub(rf"^  {missing}: .*\n", "", values.read_text(), flags=re.MULTILINE)
    values.write_text(text)
    result = render_dir(root / "overlays" / "staging")
    assert result.returncode != 0
    assert f"data.{missing}" in result.stderr


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_one_project_id_reaches_every_place(tmp_path: Path, overlay: str) -> None:
    """Changing projectId in values.yaml alone moves the settings, the subscription, the
    Workload Identity annotation, the image's registry and (production) the CSI mounts."""
    shipped = yaml.safe_load((K8S / "overlays" / overlay / "values.yaml").read_text())
    old = shipped["data"]["projectId"]
    root = operator_copy(tmp_path, projectId="acme-omni-test")
    result = render_dir(root / "overlays" / overlay)
    assert result.returncode == 0, result.stderr
    assert not PLACEHOLDERS.search(result.stdout)
    rendered = objects_of(result.stdout)
    # values.yaml is local-config: used for the render, never applied.
    assert not [o for o in rendered if o["metadata"]["name"] == "omni-secrets-values"]
    # Only the auth policy's identities (the operator's own, often in other projects) keep it.
    leftovers = [
        o["metadata"]["name"]
        for o in rendered
        if old in yaml.safe_dump(o) and o["metadata"]["name"] != "omni-secrets-auth-policy"
    ]
    assert leftovers == []
    (config,) = [o for o in rendered if o["metadata"]["name"].startswith("omni-secrets-config")]
    data = config["data"]
    assert data["GCP_PROJECT_ID"] == "acme-omni-test"
    assert data["OMNI_PUBSUB_SUBSCRIPTION"] == (
        "projects/acme-omni-test/subscriptions/omni-secrets-gsm-events"
    )
    assert data["OMNI_GCP_PROJECT_NUMBER"] == OPERATOR_VALUES["projectNumber"]
    assert data["OMNI_BREAKGLASS_PUBLIC_KEY"] == OPERATOR_VALUES["breakGlassPublicKey"]
    if overlay == "production":
        assert data["OMNI_PRODUCTION_GCP_PROJECT_IDS"] == "acme-omni-test"
        csi = [o for o in rendered if o["kind"] == "SecretProviderClass"]
        names = re.findall(
            r'resourceName: "([^"]+)"', "".join(o["spec"]["parameters"]["secrets"] for o in csi)
        )
        assert len(names) == 3
        assert all(n.startswith("projects/acme-omni-test/secrets/") for n in names), names
    (account,) = [o for o in rendered if o["kind"] == "ServiceAccount"]
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == (
        "omni-secrets@acme-omni-test.iam.gserviceaccount.com"
    )
    images = re.findall(r"image: (\S+)", result.stdout)
    assert len(images) >= 4
    assert {i.split("/")[1] for i in images} == {"acme-omni-test"}, images


def test_the_project_id_is_written_once_per_overlay() -> None:
    """The example project id appears in values.yaml and, outside it, only in the identities of
    the auth policy."""
    for overlay in OVERLAYS:
        directory = K8S / "overlays" / overlay
        project = yaml.safe_load((directory / "values.yaml").read_text())["data"]["projectId"]
        places = {
            path.name: path.read_text().count(project)
            for path in directory.iterdir()
            if path.name not in ("auth-policy.yaml",)
        }
        assert {name: n for name, n in places.items() if n} == {"values.yaml": 1}, places
