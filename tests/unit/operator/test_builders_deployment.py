"""build_deployment: every field of the serving Deployment that matters."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeploy_operator import naming
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders import BuildContext, TrackPlan, build_deployment
from modeldeploy_operator.builders.deployment import container_resources, model_storage
from modeldeploy_operator.naming import Track

from tests.unit.operator.factories import IMAGE, UID, MakeMd

SHA = "ab" * 32


def _deployment(
    md: ModelDeployment,
    ctx: BuildContext,
    *,
    track: Track = "stable",
    replicas: int | None = 2,
    weight: int = 100,
) -> dict[str, Any]:
    plan = TrackPlan(track=track, serving=md.spec.serving(), replicas=replicas, weight=weight)
    return build_deployment(md, plan, ctx)


def _pod(deployment: dict[str, Any]) -> dict[str, Any]:
    return dict(deployment["spec"]["template"]["spec"])


def _server(deployment: dict[str, Any]) -> dict[str, Any]:
    [server] = _pod(deployment)["containers"]
    return dict(server)


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


class TestIdentity:
    def test_name_namespace_labels_owner(self, make_md: MakeMd, ctx: BuildContext) -> None:
        deployment = _deployment(make_md(model={"version": "2"}), ctx, track="canary")
        assert deployment["apiVersion"] == "apps/v1" and deployment["kind"] == "Deployment"
        meta = deployment["metadata"]
        assert meta["name"] == "iris-v2"
        assert meta["namespace"] == "models"
        assert meta["labels"] == naming.labels_for("iris", "2", "canary")
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "modeldeploy.dev/v1alpha1",
                "kind": "ModelDeployment",
                "name": "iris",
                "uid": UID,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]

    def test_selector_is_model_and_version_only(self, make_md: MakeMd, ctx: BuildContext) -> None:
        deployment = _deployment(make_md(model={"version": "2"}), ctx, track="canary")
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector == {"modeldeploy.dev/model": "iris", "modeldeploy.dev/version": "2"}
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        assert pod_labels == naming.pod_labels("iris", "2")

    def test_pod_template_does_not_change_with_the_track(
        self, make_md: MakeMd, ctx: BuildContext
    ) -> None:
        """Promotion relabels the Deployment but must not restart its pods."""
        md = make_md()
        canary = _deployment(md, ctx, track="canary", weight=50)
        stable = _deployment(md, ctx, track="stable")
        assert canary["spec"]["template"] == stable["spec"]["template"]
        assert canary["metadata"]["labels"] != stable["metadata"]["labels"]

    def test_serving_hash_annotation(self, make_md: MakeMd, ctx: BuildContext) -> None:
        md = make_md()
        annotations = _deployment(md, ctx)["spec"]["template"]["metadata"]["annotations"]
        assert annotations == {naming.ANNOTATION_SERVING_HASH: md.spec.serving().fingerprint()}
        other = _deployment(make_md(server={"workers": 3}), ctx)
        assert other["spec"]["template"]["metadata"]["annotations"] != annotations

    def test_missing_uid_is_refused(self, make_md: MakeMd, ctx: BuildContext) -> None:
        md = make_md()
        anonymous = md.model_copy(update={"metadata": md.metadata.model_copy(update={"uid": ""})})
        with pytest.raises(ValueError, match="no uid"):
            _deployment(anonymous, ctx)


class TestReplicas:
    def test_fixed_replicas(self, make_md: MakeMd, ctx: BuildContext) -> None:
        assert _deployment(make_md(), ctx, replicas=3)["spec"]["replicas"] == 3
        assert _deployment(make_md(), ctx, replicas=0)["spec"]["replicas"] == 0

    def test_no_replicas_field_when_an_hpa_owns_the_count(
        self, make_md: MakeMd, ctx: BuildContext
    ) -> None:
        md = make_md(autoscaling={"maxReplicas": 5, "targetCPUUtilizationPercentage": 60})
        assert "replicas" not in _deployment(md, ctx, replicas=None)["spec"]

    def test_an_autoscaled_deployment_is_created_at_its_initial_size(
        self, make_md: MakeMd, ctx: BuildContext
    ) -> None:
        md = make_md()
        plan = TrackPlan(
            track="stable", serving=md.spec.serving(), replicas=None, weight=100,
            initial_replicas=4,
        )  # fmt: skip
        assert build_deployment(md, plan, ctx)["spec"]["replicas"] == 4

    def test_a_fixed_size_and_an_initial_size_exclude_each_other(self, make_md: MakeMd) -> None:
        serving = make_md().spec.serving()
        with pytest.raises(ValueError, match="initial_replicas"):
            TrackPlan(track="stable", serving=serving, replicas=2, weight=100, initial_replicas=2)

    def test_rolling_update_never_drops_below_desired(
        self, make_md: MakeMd, ctx: BuildContext
    ) -> None:
        spec = _deployment(make_md(), ctx)["spec"]
        assert spec["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
        }
        assert spec["revisionHistoryLimit"] == ctx.revision_history_limit

    def test_progress_deadline_comes_from_the_rollout(
        self, make_md: MakeMd, ctx: BuildContext
    ) -> None:
        assert _deployment(make_md(), ctx)["spec"]["progressDeadlineSeconds"] == 600
        md = make_md(rollout={"progressDeadline": "1500ms"})
        assert _deployment(md, ctx)["spec"]["progressDeadlineSeconds"] == 2


class TestStorage:
    def test_fetch_into_an_empty_dir(self, make_md: MakeMd, ctx: BuildContext) -> None:
        md = make_md(model={"storageUri": "s3://models/iris/1/model.joblib", "sha256": SHA})
        pod = _pod(_deployment(md, ctx))
        [fetch] = pod["initContainers"]
        assert fetch["name"] == "fetch"
        assert fetch["image"] == IMAGE
        assert fetch["command"] == ["modeldeploy"]
        assert fetch["args"] == [
            "fetch",
            "s3://models/iris/1/model.joblib",
            "/mnt/models",
            "--sha256",
            SHA,
        ]
        assert {"name": "model", "emptyDir": {}} in pod["volumes"]
        assert {"name": "model", "mountPath": "/mnt/models"} in fetch["volumeMounts"]
        server = _server(_deployment(md, ctx))
        assert _arg(server["args"], "--model-dir") == "/mnt/models"
        # The server checks the bytes it loads too (and so loads a pickle pinned, not warned).
        assert _arg(server["args"], "--sha256") == SHA
        assert {"name": "model", "mountPath": "/mnt/models"} in server["volumeMounts"]

    def test_fetch_without_sha(self, make_md: MakeMd, ctx: BuildContext) -> None:
        [fetch] = _pod(_deployment(make_md(), ctx))["initContainers"]
        assert "--sha256" not in fetch["args"]
        assert "--sha256" not in _server(_deployment(make_md(), ctx))["args"]

    def test_pvc_is_mounted_read_only_without_a_fetcher(
        self, make_md: MakeMd, ctx: BuildContext
    ) -> None:
        md = make_md(model={"storageUri": "pvc://models/iris/2/model.joblib", "sha256": SHA})
        deployment = _deployment(md, ctx)
        pod = _pod(deployment)
        assert "initContainers" not in pod
        assert {
            "name": "model",
            "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
        } in pod["volumes"]
        server = _server(deployment)
        assert {"name": "model", "mountPath": "/mnt/pvc/models", "readOnly": True} in server[
            "volumeMounts"
        ]
        assert _arg(server["args"], "--model-dir") == "/mnt/pvc/models/iris/2"
        assert _arg(server["args"], "--sha256") == SHA

    @pytest.mark.parametrize(
        ("uri", "model_dir"),
        [
            ("pvc://models/iris/2/model.joblib", "/mnt/pvc/models/iris/2"),
            ("pvc://models/iris/2/clf.pkl", "/mnt/pvc/models/iris/2"),
            ("pvc://models/iris/2/model.skops", "/mnt/pvc/models/iris/2"),
            ("pvc://models/iris/2", "/mnt/pvc/models/iris/2"),
            ("pvc://models/iris/2/", "/mnt/pvc/models/iris/2"),
            ("pvc://shared/model.joblib", "/mnt/pvc/shared"),
        ],
    )
    def test_pvc_model_dir(self, ctx: BuildContext, uri: str, model_dir: str) -> None:
        assert model_storage(uri, ctx).model_dir == model_dir

    def test_pvc_without_path_is_refused(self, ctx: BuildContext) -> None:
        with pytest.raises(ValueError, match="pvc://CLAIM/PATH"):
            model_storage("pvc://models", ctx)

    @pytest.mark.parametrize("uri", ["pvc://Models/iris", "pvc://models//iris", "pvc://-x/iris"])
    def test_pvc_the_api_refuses_is_refused(self, ctx: BuildContext, uri: str) -> None:
        """The builder reads pvc:// with the grammar the apiserver checks, not a looser one."""
        with pytest.raises(ValueError, match="pvc://CLAIM/PATH"):
            model_storage(uri, ctx)

    def test_mount_paths_come_from_the_context(self, make_md: MakeMd) -> None:
        ctx = BuildContext(server_image=IMAGE, model_mount_path="/models", pvc_mount_root="/pvc")
        assert model_storage("gs://b/k", ctx).model_dir == "/models"
        assert model_storage("pvc://c/a/b", ctx).model_dir == "/pvc/c/a/b"


class TestServerContainer:
    def test_command_and_port(self, make_md: MakeMd, ctx: BuildContext) -> None:
        server = _server(_deployment(make_md(model={"version": "1.0"}), ctx))
        assert server["name"] == "server"
        assert server["image"] == IMAGE
        assert server["command"] == ["modeldeploy"]
        assert server["args"] == [
            "serve",
            "--model-dir",
            "/mnt/models",
            "--name",
            "iris",
            "--version",
            "1.0",
            "--port",
            "8080",
            "--graceful-timeout",
            "20",
        ]
        assert server["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]

    def test_image_pull_policy_and_workers(self, make_md: MakeMd, ctx: BuildContext) -> None:
        md = make_md(server={"image": "mine:2", "imagePullPolicy": "Never", "workers": 4})
        deployment = _deployment(md, ctx)
        server = _server(deployment)
        assert server["image"] == "mine:2" and server["imagePullPolicy"] == "Never"
        assert _arg(server["args"], "--workers") == "4"
        [fetch] = _pod(deployment)["initContainers"]
        assert fetch["image"] == "mine:2" and fetch["imagePullPolicy"] == "Never"
        assert "imagePullPolicy" not in _server(_deployment(make_md(), ctx))

    def test_env(self, make_md: MakeMd, ctx: BuildContext) -> None:
        secret = {"secretKeyRef": {"name": "s3", "key": "secret"}}
        env = [{"name": "AWS_REGION", "value": "eu-west-1"}, {"name": "KEY", "valueFrom": secret}]
        deployment = _deployment(make_md(model={"version": "7"}, server={"env": env}), ctx)
        expected = [
            {"name": "MODELDEPLOY_MODEL", "value": "iris"},
            {"name": "MODELDEPLOY_VERSION", "value": "7"},
            {"name": "AWS_REGION", "value": "eu-west-1"},
            {"name": "KEY", "valueFrom": secret},
        ]
        assert _server(deployment)["env"] == expected
        [fetch] = _pod(deployment)["initContainers"]
        assert fetch["env"] == expected  # credentials reach the fetcher too

    def test_probes(self, make_md: MakeMd, ctx: BuildContext) -> None:
        server = _server(_deployment(make_md(name="fraud"), ctx))
        assert server["readinessProbe"]["httpGet"] == {
            "path": "/v2/models/fraud/ready",
            "port": "http",
        }
        assert server["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
        startup = server["startupProbe"]
        assert startup["httpGet"] == {"path": "/v2/health/live", "port": "http"}
        patience = startup["periodSeconds"] * startup["failureThreshold"]
        assert patience >= ctx.startup_timeout_seconds

    def test_default_resources(self, make_md: MakeMd, ctx: BuildContext) -> None:
        assert _server(_deployment(make_md(), ctx))["resources"] == {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"memory": "1Gi"},
        }

    def test_user_resources_replace_defaults_per_resource(
        self, make_md: MakeMd, ctx: BuildContext
    ) -> None:
        resources = {"requests": {"memory": "2Gi"}, "limits": {"cpu": 2}}
        md = make_md(server={"resources": resources})
        assert container_resources(md.spec.server, ctx) == {
            # cpu: the user's limit alone (Kubernetes then requests the limit); memory: the
            # user's request alone (a default 1Gi limit would undercut it).
            "requests": {"memory": "2Gi"},
            "limits": {"cpu": "2"},
        }

    def test_resources_untouched_by_the_user_keep_defaults(
        self, make_md: MakeMd, ctx: BuildContext
    ) -> None:
        md = make_md(server={"resources": {"requests": {"nvidia.com/gpu": 1}}})
        assert container_resources(md.spec.server, ctx) == {
            "requests": {"cpu": "100m", "memory": "256Mi", "nvidia.com/gpu": "1"},
            "limits": {"memory": "1Gi"},
        }

    def test_empty_sections_are_left_out(self, make_md: MakeMd) -> None:
        ctx = BuildContext(server_image=IMAGE, default_limits={})
        assert "limits" not in container_resources(make_md().spec.server, ctx)


class TestPodSecurity:
    """The restricted Pod Security Standard, for every container."""

    @pytest.mark.parametrize("uri", ["s3://b/k", "pvc://models/iris/1"])
    def test_restricted(self, make_md: MakeMd, ctx: BuildContext, uri: str) -> None:
        pod = _pod(_deployment(make_md(model={"storageUri": uri}), ctx))
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 65532
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        containers = pod["containers"] + pod.get("initContainers", [])
        for container in containers:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["runAsNonRoot"] is True
            assert security["runAsUser"] == 65532
            assert security["capabilities"] == {"drop": ["ALL"]}
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
        for volume in pod["volumes"]:
            assert set(volume) - {"name"} <= {"emptyDir", "persistentVolumeClaim"}
        for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
            assert forbidden not in pod

    def test_pod_hardening(self, make_md: MakeMd, ctx: BuildContext) -> None:
        pod = _pod(_deployment(make_md(), ctx))
        assert pod["automountServiceAccountToken"] is False
        assert pod["enableServiceLinks"] is False
        assert pod["terminationGracePeriodSeconds"] == ctx.termination_grace_period_seconds


class TestTermination:
    def test_a_terminating_pod_keeps_serving_before_it_drains(
        self, make_md: MakeMd, ctx: BuildContext
    ) -> None:
        server = _server(_deployment(make_md(), ctx))
        assert server["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}

    def test_the_grace_period_outlasts_the_pause_and_the_drain(self, make_md: MakeMd) -> None:
        ctx = BuildContext(server_image=IMAGE, pre_stop_seconds=7, drain_seconds=40)
        deployment = _deployment(make_md(), ctx)
        server = _server(deployment)
        pause = server["lifecycle"]["preStop"]["sleep"]["seconds"]
        drain = int(_arg(server["args"], "--graceful-timeout"))
        assert (pause, drain) == (7, 40)
        assert _pod(deployment)["terminationGracePeriodSeconds"] > pause + drain


class TestScheduling:
    def test_node_selector_and_tolerations_reach_the_pod(
        self, make_md: MakeMd, ctx: BuildContext
    ) -> None:
        toleration = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
        timed = {"key": "spot", "operator": "Equal", "value": "yes", "effect": "NoExecute",
                 "tolerationSeconds": 30}  # fmt: skip
        md = make_md(server={"nodeSelector": {"pool": "ml"}, "tolerations": [toleration, timed]})
        pod = _pod(_deployment(md, ctx))
        assert pod["nodeSelector"] == {"pool": "ml"}
        assert pod["tolerations"] == [toleration, timed]

    def test_no_scheduling_fields_without_them(self, make_md: MakeMd, ctx: BuildContext) -> None:
        pod = _pod(_deployment(make_md(), ctx))
        assert "nodeSelector" not in pod and "tolerations" not in pod

    def test_absent_scheduling_fields_keep_the_serving_hash(self, make_md: MakeMd) -> None:
        """Adding the fields must not roll every existing ModelDeployment."""
        dumped = make_md().spec.serving().model_dump(by_alias=True, exclude_none=True)
        assert "nodeSelector" not in dumped["server"] and "tolerations" not in dumped["server"]


def test_manifests_share_no_mutable_objects(make_md: MakeMd, ctx: BuildContext) -> None:
    """Callers may edit a built manifest (e.g. to diff it) without touching another."""
    deployment = _deployment(make_md(), ctx)
    pod = _pod(deployment)
    [fetch], [server] = pod["initContainers"], pod["containers"]
    fetch["env"].append({"name": "X", "value": "1"})
    fetch["volumeMounts"][0]["mountPath"] = "/elsewhere"
    fetch["resources"]["requests"]["cpu"] = "9"
    assert len(server["env"]) == 2
    assert server["volumeMounts"][0]["mountPath"] == "/mnt/models"
    assert server["resources"]["requests"]["cpu"] == "100m"
    assert _deployment(make_md(), ctx) != deployment
