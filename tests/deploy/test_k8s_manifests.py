"""The Kustomize overlays (deploy/k8s): they render, validate against the Kubernetes schema, and
carry the security, probe, identity and configuration settings the service depends on."""

from __future__ import annotations

import re
import socket
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from kubernetes_validate import utils as kv_utils
from kubernetes_validate import validate as kv_validate
from typer.testing import CliRunner

from omni_secrets.adapters.retry import DEFAULT_DEADLINE_SECONDS
from omni_secrets.api.auth_policy import load_policy_file
from omni_secrets.cli import app as cli_app
from omni_secrets.config import Settings, check_environment
from tests.deploy_files import load_rules

from .tools import OVERLAYS, ROOT, dry_run, flag, one, render, require_tool, run

#: The kubectl client here (1.32) and the newest schema kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.32.0", kv_utils.latest_version())
#: Custom resources: no schema in kubernetes-validate; checked field by field below instead.
CUSTOM_KINDS = {"PodMonitoring", "Rules", "SecretProviderClass"}
CORE_KINDS = {
    "Namespace",
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Job",
}
SETTING_NAMES = {field.alias for field in Settings.model_fields.values()}
SECRET_SETTINGS = {"OMNI_DATABASE_URL", "OMNI_PAGERDUTY_ROUTING_KEY", "OMNI_AUTH_HS256_SECRET"}
FAKE_PUBLIC_KEY = "fake-breakglass-public-key"


def dockerfile_uid() -> int:
    match = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "the Dockerfile sets no numeric USER"
    return int(match.group(1))


def pod_specs(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        "Deployment": one(objects, "Deployment")["spec"]["template"]["spec"],
        "Job": one(objects, "Job")["spec"]["template"]["spec"],
    }


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def config_map(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The ConfigMap generated as ``name`` (kustomize may append a content hash)."""
    found = [
        o
        for o in objects
        if o["kind"] == "ConfigMap"
        and re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", o["metadata"]["name"])
    ]
    assert len(found) == 1, f"expected one ConfigMap {name}, found {len(found)}"
    return found[0]


def config_data(objects: list[dict[str, Any]]) -> dict[str, str]:
    config: dict[str, str] = config_map(objects, "omni-secrets-config")["data"]
    return config


#: Kubernetes' $(NAME) expansion in a container's args.
ARG_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand_args(container: dict[str, Any], objects: list[dict[str, Any]]) -> list[str]:
    """The container's args as the kubelet runs them: each $(NAME) replaced by the value of
    that env entry (a literal or a ConfigMap key); an unresolvable name fails the test."""
    values: dict[str, str] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            values[entry["name"]] = entry["value"]
        elif "configMapKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["configMapKeyRef"]
            (source,) = [
                o
                for o in objects
                if o["kind"] == "ConfigMap" and o["metadata"]["name"] == ref["name"]
            ]
            values[entry["name"]] = source["data"][ref["key"]]

    def value(match: re.Match[str]) -> str:
        assert match.group(1) in values, f"{container['name']}: $({match.group(1)}) is unset"
        return values[match.group(1)]

    return [ARG_VARIABLE.sub(value, arg) for arg in container["args"]]


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def objects(overlay: str) -> list[dict[str, Any]]:
    return render(overlay)


class TestRenderAndSchema:
    def test_every_object_is_there(self, objects: list[dict[str, Any]], overlay: str) -> None:
        """Each overlay renders the full set, all in the omni-secrets namespace."""
        kinds = {o["kind"] for o in objects}
        expected = CORE_KINDS | {"PodMonitoring", "Rules"}
        if overlay == "production":
            expected |= {"SecretProviderClass"}
        assert kinds == expected
        for o in objects:
            if o["kind"] != "Namespace":
                assert o["metadata"]["namespace"] == "omni-secrets", o["metadata"]["name"]

    @pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
    def test_core_objects_validate_offline(
        self, objects: list[dict[str, Any]], version: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Strict schema validation of every built-in object with no network at all (custom
        resources have no bundled schema: exactly those are reported as such)."""

        def no_network(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("kubernetes-validate tried to use the network")

        monkeypatch.setattr(socket.socket, "connect", no_network)
        unvalidated = set()
        for o in objects:
            try:
                kv_validate(o, version, strict=True)
            except kv_utils.SchemaNotFoundError:
                unvalidated.add(o["kind"])
        assert unvalidated == {o["kind"] for o in objects} & CUSTOM_KINDS

    def test_the_validator_rejects_a_broken_deployment(self, objects: list[dict[str, Any]]) -> None:
        """The schema check has teeth: a wrong type and an unknown field are both refused."""
        deployment = one(objects, "Deployment")
        deployment["spec"]["replicas"] = "two"
        with pytest.raises(kv_utils.ValidationError):
            kv_validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
        deployment = one(render("staging"), "Deployment")
        deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
        with pytest.raises(kv_utils.ValidationError):
            kv_validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


class TestSecurity:
    def test_pods_run_non_root_with_seccomp(self, objects: list[dict[str, Any]]) -> None:
        for kind, pod in pod_specs(objects).items():
            context = pod["securityContext"]
            assert context["runAsNonRoot"] is True, kind
            assert context["runAsUser"] == dockerfile_uid(), kind
            assert context["runAsUser"] != 0, kind
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, kind

    def test_containers_are_locked_down(self, objects: list[dict[str, Any]]) -> None:
        """Read-only root, no privilege escalation, every capability dropped, everywhere."""
        for kind, pod in pod_specs(objects).items():
            for container in containers(pod):
                context = container["securityContext"]
                where = f"{kind}/{container['name']}"
                assert context["readOnlyRootFilesystem"] is True, where
                assert context["allowPrivilegeEscalation"] is False, where
                assert context["capabilities"] == {"drop": ["ALL"]}, where
                assert context.get("privileged", False) is False, where

    def test_namespace_enforces_restricted_pod_security(
        self, objects: list[dict[str, Any]]
    ) -> None:
        labels = one(objects, "Namespace")["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"

    def test_writable_paths_are_memory_volumes(self, objects: list[dict[str, Any]]) -> None:
        """With a read-only root, /tmp is the one writable place, and it is an emptyDir."""
        pod = pod_specs(objects)["Deployment"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
        assert volumes[mounts["/tmp"]["name"]]["emptyDir"]["medium"] == "Memory"
        assert mounts["/etc/omni-secrets/keys"]["readOnly"] is True

    def test_network_policy_selects_every_pod_and_denies_by_default(
        self, objects: list[dict[str, Any]]
    ) -> None:
        policy = one(objects, "NetworkPolicy")["spec"]
        assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
        (expression,) = policy["podSelector"]["matchExpressions"]
        for kind in ("Deployment", "Job"):
            app = one(objects, kind)["spec"]["template"]["metadata"]["labels"]["app"]
            assert app in expression["values"], kind
        (ingress,) = policy["ingress"]
        assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]


class TestDeployment:
    def test_replicas_spread_and_disruption_budget(self, objects: list[dict[str, Any]]) -> None:
        deployment = one(objects, "Deployment")["spec"]
        assert deployment["replicas"] >= 2
        assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        keys = {
            c["topologyKey"] for c in deployment["template"]["spec"]["topologySpreadConstraints"]
        }
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        pod_labels = deployment["template"]["metadata"]["labels"]
        budget = one(objects, "PodDisruptionBudget")["spec"]
        assert budget["minAvailable"] == 1
        assert budget["selector"]["matchLabels"].items() <= pod_labels.items()

    def test_probes(self, objects: list[dict[str, Any]]) -> None:
        """Startup covers hydration, readiness is /readyz, liveness /healthz, all on the
        container's named port."""
        container = pod_specs(objects)["Deployment"]["containers"][0]
        port_names = {p["name"] for p in container["ports"]}
        startup = container["startupProbe"]
        readiness = container["readinessProbe"]
        liveness = container["livenessProbe"]
        assert startup["httpGet"]["path"] == "/healthz"
        assert readiness["httpGet"]["path"] == "/readyz"
        assert liveness["httpGet"]["path"] == "/healthz"
        for probe in (startup, readiness, liveness):
            assert probe["httpGet"]["port"] in port_names
        # Hydration runs before the server listens; it may take the whole GSM retry budget.
        startup_budget = startup["periodSeconds"] * startup["failureThreshold"]
        assert startup_budget >= 3 * DEFAULT_DEADLINE_SECONDS

    def test_resources_are_bounded(self, objects: list[dict[str, Any]]) -> None:
        for kind, pod in pod_specs(objects).items():
            for container in containers(pod):
                resources = container["resources"]
                assert {"cpu", "memory"} <= resources["requests"].keys(), kind
                assert {"cpu", "memory"} <= resources["limits"].keys(), kind

    def test_service_reaches_the_pods(self, objects: list[dict[str, Any]]) -> None:
        service = one(objects, "Service")["spec"]
        pod = one(objects, "Deployment")["spec"]["template"]
        assert service["selector"].items() <= pod["metadata"]["labels"].items()
        port_names = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        assert {p["targetPort"] for p in service["ports"]} <= port_names

    def test_runbook_names_exist(self, objects: list[dict[str, Any]]) -> None:
        """The runbooks' deployment/omni-secrets, serviceaccount omni-secrets, app=omni-secrets."""
        assert one(objects, "Deployment", "omni-secrets")
        assert one(objects, "ServiceAccount", "omni-secrets")
        labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
        assert labels["app"] == "omni-secrets"


class TestIdentity:
    def test_workload_identity_annotation_names_the_project(
        self, objects: list[dict[str, Any]]
    ) -> None:
        account = one(objects, "ServiceAccount", "omni-secrets")
        project = config_data(objects)["GCP_PROJECT_ID"]
        annotation = account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
        assert annotation == f"omni-secrets@{project}.iam.gserviceaccount.com"
        for kind, pod in pod_specs(objects).items():
            assert pod["serviceAccountName"] == "omni-secrets", kind

    def test_job_is_owner_and_deployment_is_runtime(self, objects: list[dict[str, Any]]) -> None:
        """Schema changes run as the owner role, serving (and the Job's last step, doctor,
        which checks what serving will see) as the runtime role."""

        def database_secret(container: dict[str, Any]) -> str:
            (entry,) = [e for e in container["env"] if e["name"] == "OMNI_DATABASE_URL"]
            name: str = entry["valueFrom"]["secretKeyRef"]["name"]
            return name

        pods = pod_specs(objects)
        assert database_secret(pods["Deployment"]["containers"][0]) == "omni-secrets-runtime"
        job = containers(pods["Job"])
        for container in job[:-1]:
            assert database_secret(container) == "omni-secrets-migrate", container["name"]
        assert job[-1]["name"] == "doctor"
        assert database_secret(job[-1]) == "omni-secrets-runtime"


class TestConfiguration:
    def env_names(self, objects: list[dict[str, Any]]) -> dict[str, set[str]]:
        names = {}
        config = config_data(objects)
        for kind, pod in pod_specs(objects).items():
            for container in containers(pod):
                # Variables only expanded into args ($(NAME)) are not settings; they must not
                # look like one either.
                expanded = {n for a in container.get("args", []) for n in ARG_VARIABLE.findall(a)}
                assert not {n for n in expanded if n.startswith("OMNI_")}, container["name"]
                found = {e["name"] for e in container.get("env", [])} - expanded
                for source in container.get("envFrom", []):
                    assert (
                        source["configMapRef"]["name"]
                        == config_map(objects, "omni-secrets-config")["metadata"]["name"]
                    )
                    found |= config.keys()
                names[f"{kind}/{container['name']}"] = found
        return names

    def test_every_env_name_is_a_real_setting(self, objects: list[dict[str, Any]]) -> None:
        """Read from config.Settings: a typo or a removed setting fails here, not in a pod."""
        for where, names in self.env_names(objects).items():
            assert names, where
            assert names <= SETTING_NAMES, f"{where}: not settings: {names - SETTING_NAMES}"

    def test_no_secret_setting_in_the_config_map(self, objects: list[dict[str, Any]]) -> None:
        assert not config_data(objects).keys() & SECRET_SETTINGS

    def test_config_passes_the_environment_guard(self, objects: list[dict[str, Any]]) -> None:
        """The overlay's settings, with the values an operator supplies, start: environment
        and project agree, JWKS auth, no HS256, no emulator endpoint."""
        config = {k: v for k, v in config_data(objects).items() if v}
        config["OMNI_BREAKGLASS_PUBLIC_KEY"] = FAKE_PUBLIC_KEY
        # From the omni-secrets-runtime Secret in a real deployment (PostgreSQL; no password here).
        config["OMNI_DATABASE_URL"] = "postgresql+psycopg://omni_runtime@db.invalid:5432/omni"
        settings = Settings(**config)
        check_environment(settings)
        assert settings.environment is not None
        assert settings.is_production_project(config["GCP_PROJECT_ID"]) == (
            settings.environment.value == "production"
        )

    def test_gsm_events_are_switched_on(
        self, objects: list[dict[str, Any]], tmp_path: Path
    ) -> None:
        """Every overlay consumes GSM event notifications (contract section 12): its
        OMNI_PUBSUB_SUBSCRIPTION is set, in its own project, names exactly the subscription
        deploy/gcp/setup.sh creates there (on the topic every catalog secret notifies, consumable
        by the Workload Identity service account) and is accepted by the service's settings; the
        project number GSM's events use has its (operator-filled) entry beside it."""
        config = config_data(objects)
        project = config["GCP_PROJECT_ID"]
        subscription = config.get("OMNI_PUBSUB_SUBSCRIPTION", "")
        assert subscription.startswith(f"projects/{project}/subscriptions/"), subscription
        assert Settings(OMNI_PUBSUB_SUBSCRIPTION=subscription).pubsub_subscription == subscription
        assert "OMNI_GCP_PROJECT_NUMBER" in config

        commands, _ = dry_run(tmp_path, GCP_PROJECT_ID=project)
        (create,) = [c for c in commands if c[1:4] == ["pubsub", "subscriptions", "create"]]
        assert f"projects/{flag(create, 'project')}/subscriptions/{create[4]}" == subscription
        topic = f"projects/{project}/topics/{flag(create, 'topic')}"
        notifying = [
            flag(c, "topics")
            for c in commands
            if c[1:3] == ["secrets", "create"] and not c[3].endswith("audit-anchor")
        ]
        assert notifying and set(notifying) == {topic}
        account = one(objects, "ServiceAccount", "omni-secrets")
        email = account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
        consumers = {
            flag(c, "member")
            for c in commands
            if c[1:4] == ["pubsub", "subscriptions", "add-iam-policy-binding"]
            and c[4] == create[4]
            and flag(c, "role") == "roles/pubsub.subscriber"
        }
        assert consumers == {f"serviceAccount:{email}"}

    def test_key_file_settings_point_into_the_mounted_keys(
        self, objects: list[dict[str, Any]]
    ) -> None:
        """Every *_FILE setting names a file in the keys volume, and the CSI variant (if any)
        writes a file of that name."""
        pod = pod_specs(objects)["Deployment"]
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "keys"]
        files = {k: v for k, v in config_data(objects).items() if k.endswith("_KEY_FILE")}
        assert files, "no key file setting"
        for setting, path in files.items():
            assert str(PurePosixPath(path).parent) == mount["mountPath"], setting
        (volume,) = [v for v in pod["volumes"] if v["name"] == "keys"]
        providers = [o for o in objects if o["kind"] == "SecretProviderClass"]
        assert ("csi" in volume) == bool(providers)
        for provider in providers:
            entries = yaml.safe_load(provider["spec"]["parameters"]["secrets"])
            project = config_data(objects)["GCP_PROJECT_ID"]
            for entry in entries:
                assert entry["resourceName"].startswith(f"projects/{project}/secrets/")
        if "csi" in volume:
            (provider,) = [
                p
                for p in providers
                if p["metadata"]["name"] == volume["csi"]["volumeAttributes"]["secretProviderClass"]
            ]
            entries = yaml.safe_load(provider["spec"]["parameters"]["secrets"])
            written = {e["path"] for e in entries}
            assert {PurePosixPath(p).name for p in files.values()} <= written

    def test_job_runs_real_commands_in_order(self, objects: list[dict[str, Any]]) -> None:
        """Each migration step is a command the CLI has (its --help answers), upgrade first."""
        pod = pod_specs(objects)["Job"]
        steps = [expand_args(c, objects) for c in containers(pod)]
        runtime_role = config_map(objects, "omni-secrets-migrate-config")["data"]["runtime-role"]
        assert steps == [
            ["db", "upgrade"],
            ["db", "seed"],
            ["db", "grants", "--role", runtime_role, "--apply"],
            ["doctor", "--skip", "break-glass"],
        ]
        # The last step (doctor, after db upgrade) is the only regular container: the Job
        # completes, or fails, when it does.
        assert [c["name"] for c in pod["containers"]] == ["doctor"]
        runner = CliRunner()
        for args in steps:
            result = runner.invoke(cli_app, [*args, "--help"])
            assert result.exit_code == 0, f"{args}: {result.output}"
        deployment_args = pod_specs(objects)["Deployment"]["containers"][0]["args"]
        assert runner.invoke(cli_app, [*deployment_args, "--help"]).exit_code == 0
        assert deployment_args[0] == "serve"

    def test_job_mounts_only_the_integrity_key_where_the_setting_points(
        self, objects: list[dict[str, Any]]
    ) -> None:
        """Production `db seed` signs pins: every Job step sees OMNI_INTEGRITY_KEY_FILE's
        directory, read-only, holding the integrity key and not the break-glass private key."""
        key_file = PurePosixPath(config_data(objects)["OMNI_INTEGRITY_KEY_FILE"])
        pod = pod_specs(objects)["Job"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in containers(pod):
            mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
            mount = mounts[str(key_file.parent)]
            assert mount["readOnly"] is True, container["name"]
            assert "subPath" not in mount, container["name"]
            volume = volumes[mount["name"]]
            if "secret" in volume:
                items = volume["secret"]["items"]
                assert [(i["key"], i["path"]) for i in items] == [("integrity-key", key_file.name)]
            else:
                (provider,) = [
                    o
                    for o in objects
                    if o["kind"] == "SecretProviderClass"
                    and o["metadata"]["name"]
                    == volume["csi"]["volumeAttributes"]["secretProviderClass"]
                ]
                entries = yaml.safe_load(provider["spec"]["parameters"]["secrets"])
                assert [e["path"] for e in entries] == [key_file.name]
                project = config_data(objects)["GCP_PROJECT_ID"]
                assert entries[0]["resourceName"] == (
                    f"projects/{project}/secrets/omni-secrets-integrity-key/versions/latest"
                )

    def test_auth_policy_is_a_directory_mount_the_service_accepts(
        self, objects: list[dict[str, Any]], tmp_path: Path
    ) -> None:
        """OMNI_AUTH_POLICY_FILE names a file of a ConfigMap mounted as a whole directory (a
        subPath mount never sees updates, so SIGHUP would reload the old file), the ConfigMap
        keeps its name across edits (updated in place), and its policy passes the service's own
        validation, granting a workload and an operator group."""
        policy_path = PurePosixPath(config_data(objects)["OMNI_AUTH_POLICY_FILE"])
        pod = pod_specs(objects)["Deployment"]
        (container,) = pod["containers"]
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        mount = mounts[str(policy_path.parent)]
        assert "subPath" not in mount
        assert mount["readOnly"] is True
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        assert "items" not in volume["configMap"]
        policy_map = one(objects, "ConfigMap", volume["configMap"]["name"])
        assert policy_map["metadata"]["name"] == "omni-secrets-auth-policy"  # no hash suffix
        assert set(policy_map["data"]) == {policy_path.name}
        local = tmp_path / policy_path.name
        local.write_text(policy_map["data"][policy_path.name])
        policy = load_policy_file(str(local))
        project = config_data(objects)["GCP_PROJECT_ID"]
        granted = {g.principal: set(g.scopes) for g in policy.grants}
        workload = f"email:trading-engine@{project}.iam.gserviceaccount.com"
        assert granted[workload] == {"apex-omni:read"}
        assert "omni-secrets:rotate" in granted["group:omni-operators"]


class TestManagedPrometheus:
    def test_rules_are_the_prometheus_rules(self, objects: list[dict[str, Any]]) -> None:
        """One source of truth: the Rules object's groups equal deploy/prometheus's."""
        assert one(objects, "Rules")["spec"]["groups"] == load_rules()["groups"]

    def test_pod_monitoring_scrapes_the_pods_as_the_rules_job(
        self, objects: list[dict[str, Any]]
    ) -> None:
        monitoring = one(objects, "PodMonitoring")
        pod = one(objects, "Deployment")["spec"]["template"]
        selector = monitoring["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod["metadata"]["labels"].items()
        port_names = {p["name"] for p in pod["spec"]["containers"][0]["ports"]}
        for endpoint in monitoring["spec"]["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint["path"] == "/metrics"
        # Managed Prometheus sets job=<PodMonitoring name>; the rules select job="omni-secrets".
        exprs = " ".join(
            rule["expr"] for group in load_rules()["groups"] for rule in group["rules"]
        )
        assert f'job="{monitoring["metadata"]["name"]}"' in exprs


def test_generated_files_are_up_to_date() -> None:
    """scripts/generate_gmp.py would write exactly what is committed."""
    import scripts.generate_gmp as generate_gmp

    for path, text in generate_gmp.rendered().items():
        assert Path(path).read_text() == text, f"{path} is stale: run `make gmp`"
    assert generate_gmp.main(["--check"]) == 0


def test_the_generator_check_catches_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--check fails, naming the file, when a generated file was edited by hand."""
    import scripts.generate_gmp as generate_gmp

    monkeypatch.setattr(generate_gmp, "OUTPUT_DIR", tmp_path)
    assert generate_gmp.main([]) == 0
    assert generate_gmp.main(["--check"]) == 0
    rules = tmp_path / "rules.yaml"
    rules.write_text(rules.read_text().replace("for: 10m", "for: 1h", 1))
    assert generate_gmp.main(["--check"]) == 1
    assert "rules.yaml" in capsys.readouterr().err


def test_rules_object_passes_promtool(tmp_path: Path) -> None:
    """The Rules object's groups, as a Prometheus rule file, pass `promtool check rules`."""
    promtool = require_tool("promtool", "apt-get install prometheus, or run .ci/run")
    rules = one(render("production"), "Rules")
    path = tmp_path / "gmp-rules.yml"
    path.write_text(yaml.safe_dump({"groups": rules["spec"]["groups"]}))
    result = run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


RUNBOOK_REFERENCES = (
    (re.compile(r"(?<![\w/])(?:deployment|deploy)/(?!k8s/|gcp/)([a-z0-9-]+)"), "Deployment"),
    (re.compile(r"\bserviceaccount ([a-z0-9-]+)"), "ServiceAccount"),
    (re.compile(r"get deploy(?:ment)? ([a-z0-9-]+)"), "Deployment"),
)


def test_runbooks_name_objects_that_the_manifests_create() -> None:
    """Every deployment/serviceaccount/label a runbook's kubectl line names exists."""
    objects = render("production")
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    seen = 0
    for runbook in sorted((ROOT / "docs" / "runbooks").glob("*.md")):
        for line in runbook.read_text().splitlines():
            if "kubectl " not in line:
                continue
            for pattern, kind in RUNBOOK_REFERENCES:
                for name in pattern.findall(line):
                    seen += 1
                    assert (kind, name) in names, f"{runbook.name}: {kind} {name}: {line}"
            for key, value in re.findall(r"-l ([a-z.\-/]+)=([a-z0-9-]+)", line):
                seen += 1
                assert pod_labels.get(key) == value, f"{runbook.name}: label {key}={value}"
            command = line.strip().startswith("kubectl ") or "$(kubectl " in line
            if command and "apply -k" not in line:
                assert "-n omni-secrets" in line, f"{runbook.name}: no namespace: {line}"
    assert seen >= 5
