"""The kubectl plugin: arguments, the kubectl commands it runs, the patch it sends, the summary
it prints. kubectl is replaced by a fake that keeps one ModelDeployment."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Sequence
from typing import Any

import pytest
from modeldeploy_operator import cli, plugin
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.plugin import Completed, Plugin, describe, main
from modeldeploy_operator.rollout.requests import PendingRequest, pending_request

RESOURCE = "modeldeployments.modeldeploy.dev"
ANALYSIS = {
    "time": "2026-08-01T12:00:00Z",
    "canaryVersion": "2",
    "step": 1,
    "passed": False,
    "successRate": 87.5,
    "latencyP99Ms": 41.0,
    "checks": [
        {
            "name": "successRate",
            "value": 87.5,
            "threshold": 99,
            "passed": False,
            "message": "success rate 87.5% is below the minimum 99%",
        },
        {
            "name": "latencyP99Ms",
            "value": 41.0,
            "threshold": 250,
            "passed": True,
            "message": "p99 latency 41 ms is within the maximum 250 ms",
        },
        {
            "name": "drift",
            "value": None,
            "threshold": 0.2,
            "passed": False,
            "message": "no data (...); noData is Hold: waiting for data",
        },
    ],
    "message": "1 of 3 checks failed: successRate: success rate 87.5% is below the minimum 99%",
}


def body(status: dict[str, Any] | None = None, **rollout: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "prod", "generation": 4, "annotations": {}},
        "spec": {
            "model": {"format": "sklearn", "version": "2", "storageUri": "pvc://m/iris/2"},
            "rollout": {
                "steps": [10, 25, 50],
                "analysis": {"successRate": {"min": 99}, "maxFailedChecks": 2},
                **rollout,
            },
        },
        "status": {
            "phase": "Progressing",
            "stableVersion": "1",
            "canaryVersion": "2",
            "canaryWeight": 25,
            "currentStep": 1,
            "failedChecks": 1,
            "url": "http://iris.prod.svc.cluster.local",
            "lastAnalysis": ANALYSIS,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Serving", "message": "stable 1"},
                {"type": "Progressing", "status": "True", "reason": "StepAdvanced",
                 "message": "canary 2 at 25%"},
            ],
        }
        if status is None
        else status,
    }  # fmt: skip


class FakeKubectl:
    """kubectl over one object: get prints it, patch merges into it. After `act_after` gets
    following a patch, plays the operator and records the request id in status."""

    def __init__(self, obj: dict[str, Any] | None, act_after: int | None = None) -> None:
        self.obj = obj
        self.calls: list[list[str]] = []
        self.act_after = act_after
        self.gets_since_patch = 0

    def __call__(self, args: Sequence[str]) -> Completed:
        self.calls.append(list(args))
        command = [a for a in args if not a.startswith("--")]
        if self.obj is None:
            return Completed(1, "", f'Error from server (NotFound): {RESOURCE} "iris" not found\n')
        if command[0] == "get":
            self.gets_since_patch += 1
            if self.act_after is not None and self.gets_since_patch > self.act_after:
                annotations = self.obj["metadata"]["annotations"]
                self.obj["status"]["lastRequestId"] = annotations[plugin.REQUEST_ID_ANNOTATION]
            return Completed(0, json.dumps(self.obj), "")
        if command[0] == "patch":
            patch = json.loads(next(a for a in args if a.startswith("--patch="))[8:])
            self.obj["metadata"]["annotations"].update(patch["metadata"]["annotations"])
            self.gets_since_patch = 0
            return Completed(0, "modeldeployment.modeldeploy.dev/iris patched\n", "")
        return Completed(1, "", f"unexpected {args}")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run(argv: list[str], kubectl: FakeKubectl) -> tuple[int, str, str]:
    out, err, clock = io.StringIO(), io.StringIO(), Clock()
    tool = Plugin(
        runner=kubectl, out=out, err=err, sleep=clock.sleep, clock=clock, new_id=lambda: "id-1"
    )
    code = main(argv, plugin=tool)
    return code, out.getvalue(), err.getvalue()


# ---------------------------------------------------------------------------------------------
# Requests.


def test_promote_patches_only_annotations_bound_to_the_canary() -> None:
    kubectl = FakeKubectl(body())
    code, out, err = run(["promote", "iris", "-n", "prod"], kubectl)
    assert (code, err) == (0, "")
    get, patch = kubectl.calls
    assert get == ["--namespace=prod", "get", RESOURCE, "iris", "--output=json"]
    assert patch[:6] == [
        "--namespace=prod",
        "patch",
        RESOURCE,
        "iris",
        "--type=merge",
        "--field-manager=kubectl-modeldeploy",
    ]
    assert json.loads(patch[6].removeprefix("--patch=")) == {
        "metadata": {
            "annotations": {
                "modeldeploy.dev/request": "promote",
                "modeldeploy.dev/request-id": "id-1",
                "modeldeploy.dev/request-canary": "2",
            }
        }
    }
    assert len(patch) == 7
    assert "promote requested for prod/iris (canary 2, request id-1)" in out
    assert "kubectl modeldeploy status iris -n prod" in out


@pytest.mark.parametrize("verb", ["abort", "pause", "resume"])
def test_every_request_verb_sends_its_own_name(verb: str) -> None:
    kubectl = FakeKubectl(body())
    assert run([verb, "iris"], kubectl)[0] == 0
    assert kubectl.obj is not None
    assert kubectl.obj["metadata"]["annotations"]["modeldeploy.dev/request"] == verb


def test_context_kubeconfig_and_namespace_go_to_kubectl_and_nothing_else_does() -> None:
    kubectl = FakeKubectl(body())
    run(["status", "iris", "--context", "staging", "--kubeconfig", "/tmp/kc"], kubectl)
    assert kubectl.calls == [
        ["--kubeconfig=/tmp/kc", "--context=staging", "get", RESOURCE, "iris", "--output=json"]
    ]


def test_a_request_without_a_rollout_in_progress_sends_nothing() -> None:
    steady = body({"phase": "Ready", "stableVersion": "2"})
    kubectl = FakeKubectl(steady)
    code, out, err = run(["abort", "iris"], kubectl)
    assert code == 1 and out == ""
    assert err == (
        "error: prod/iris has no rollout in progress (phase Ready, stable 2): nothing to abort\n"
    )
    assert len(kubectl.calls) == 1  # the get


def test_resume_says_it_cannot_lift_the_spec_pause() -> None:
    kubectl = FakeKubectl(body(paused=True))
    code, _, err = run(["resume", "iris"], kubectl)
    assert code == 0
    assert "spec.rollout.paused is true for prod/iris" in err
    assert kubectl.obj is not None
    assert kubectl.obj["spec"]["rollout"]["paused"] is True  # the spec is never written


def test_wait_returns_once_the_operator_recorded_the_request() -> None:
    kubectl = FakeKubectl(body(), act_after=2)
    code, out, _ = run(["promote", "iris", "--wait"], kubectl)
    assert code == 0
    assert out.splitlines()[-1] == "done: phase Progressing, stable 1, canary 2 at 25%"
    assert [c[0] for c in kubectl.calls] == ["get", "patch", "get", "get", "get"]


def test_wait_gives_up_after_the_timeout() -> None:
    kubectl = FakeKubectl(body())
    code, _, err = run(["pause", "iris", "--wait", "--timeout", "3s"], kubectl)
    assert code == 1
    assert err == (
        "error: the operator has not acted on request id-1 within 3s (status.lastRequestId is "
        "unset): is the operator running?\n"
    )
    assert [c[0] for c in kubectl.calls].count("get") == 5  # t = 0, 1, 2, 3 after the first


def test_kubectl_errors_are_reported_as_kubectl_said_them() -> None:
    code, out, err = run(["status", "iris"], FakeKubectl(None))
    assert (code, out) == (1, "")
    assert err == f'error: Error from server (NotFound): {RESOURCE} "iris" not found\n'


def test_a_missing_kubectl_is_named() -> None:
    def missing(args: Sequence[str]) -> Completed:
        raise FileNotFoundError("kubectl")

    err = io.StringIO()
    assert main(["status", "iris"], runner=missing, out=io.StringIO(), err=err) == 1
    assert err.getvalue() == "error: kubectl not found on PATH: the plugin runs kubectl\n"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["explode", "iris"],
        ["promote"],
        ["status", "iris", "--wait"],
        ["pause", "iris", "--timeout", "soon"],
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    kubectl = FakeKubectl(body())
    assert run(argv, kubectl)[0] == 2
    assert kubectl.calls == []
    assert "usage: kubectl modeldeploy" in capsys.readouterr().err


def test_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["promote", "--help"], FakeKubectl(body()))[0] == 0
    assert "--wait" in capsys.readouterr().out


def test_the_modeldeploy_command_hands_its_verbs_to_the_plugin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kubectl = FakeKubectl(body())
    monkeypatch.setattr(plugin, "run_kubectl", kubectl)
    assert cli.main(["status", "iris", "-n", "prod"]) == 0
    assert kubectl.calls == [["--namespace=prod", "get", RESOURCE, "iris", "--output=json"]]
    assert "ModelDeployment prod/iris" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# The summary.


def test_status_shows_the_rollout_and_every_check_with_its_value() -> None:
    code, out, _ = run(["status", "iris"], FakeKubectl(body()))
    assert code == 0
    lines = out.splitlines()
    assert lines[:10] == [
        "ModelDeployment prod/iris",
        "  Phase:         Progressing",
        "  Stable:        1",
        "  Canary:        2",
        "  Weight:        25%",
        "  Step:          2 of 3 (steps 10%, 25%, 50%)",
        "  Failed checks: 1 of 2",
        "  Paused:        no",
        "  URL:           http://iris.prod.svc.cluster.local",
        "  Conditions:",
    ]
    assert lines[10].split() == ["Ready", "True", "Serving", "stable", "1"]
    assert lines[12] == "  Last analysis: did not pass at 2026-08-01T12:00:00Z (canary 2, step 2)"
    assert lines[13] == f"    {ANALYSIS['message']}"
    table = [line.removeprefix("    ") for line in lines[14:]]
    assert table == [
        "CHECK         VALUE  THRESHOLD  RESULT   DETAIL",
        "successRate   87.5%  99%        FAIL     success rate 87.5% is below the minimum 99%",
        "latencyP99Ms  41 ms  250 ms     pass     p99 latency 41 ms is within the maximum 250 ms",
        "drift         -      0.2 PSI    no data  no data (...); noData is Hold: waiting for data",
    ]


def test_status_of_a_steady_model() -> None:
    text = describe(body({"phase": "Ready", "stableVersion": "1"}))
    assert "  Canary:        none (no rollout in progress)\n" in text
    assert "Weight" not in text and "Step" not in text
    assert text.endswith("  Last analysis: none\n")


def test_status_before_the_operator_saw_the_object() -> None:
    text = describe(body({}))
    assert "  Phase:         Unknown (not reconciled yet)\n" in text
    assert "  Stable:        none\n" in text


def test_status_names_who_paused_and_the_last_request() -> None:
    obj = body(paused=True)
    obj["status"]["conditions"][1]["reason"] = "PausedByRequest"
    obj["metadata"]["annotations"] = {
        "modeldeploy.dev/request": "pause",
        "modeldeploy.dev/request-id": "id-9",
        "modeldeploy.dev/request-canary": "2",
    }
    text = describe(obj)
    assert "  Paused:        yes (spec.rollout.paused, kubectl modeldeploy pause)\n" in text
    assert "  Last request:  pause for canary 2 (id-9, pending)\n" in text
    handled = copy.deepcopy(obj)
    handled["status"]["lastRequestId"] = "id-9"
    assert "(id-9, handled)" in describe(handled)


def test_status_reads_a_requested_pause_from_the_pause_conditions() -> None:
    obj = body()
    obj["status"]["pauseConditions"] = [
        {"reason": "PausedByRequest", "startTime": "2026-08-01T12:00:00Z"}
    ]
    assert "  Paused:        yes (kubectl modeldeploy pause)\n" in describe(obj)


def test_the_patch_the_plugin_sends_is_the_request_the_operator_reads() -> None:
    kubectl = FakeKubectl(body())
    code, _, _ = run(["pause", "iris"], kubectl)
    assert code == 0
    md = ModelDeployment.model_validate(kubectl.obj)
    assert pending_request(kubectl.obj, md) == PendingRequest("id-1", "pause", stale=False)
