"""Progressive delivery on the real control plane: steps, promotion, rollback, abort, restart,
requests from the kubectl plugin. The ReplicaRatio router is used (no Gateway implementation
runs here); the Gateway API router's HTTPRoute is checked as an object the apiserver accepts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from modeldeploy_operator import naming

from tests.support.kube import Kubectl, eventually
from tests.support.models import condition, model, wait_ready
from tests.support.operator_process import OperatorProcess
from tests.support.ports import free_port

PLUGIN = Path(sys.executable).parent / "kubectl-modeldeploy"


def timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def status(k: Kubectl, name: str) -> dict[str, Any]:
    md = k.get("md", name)
    return dict(md["status"]) if md and "status" in md else {}


def test_canary_steps_through_weights_then_promotes(operator: OperatorProcess, k: Kubectl) -> None:
    rollout = {"steps": [25, 50], "stepInterval": "2s"}
    k.apply(model("steps", "1", rollout=rollout))
    wait_ready(k, "steps")
    # Watches, not polling: a 2 s step is easily missed between two polls on a busy machine.
    with (
        k.watch("md", "steps", "{.status.canaryVersion} {.status.canaryWeight}") as canary,
        k.watch("service", "steps", "{.spec.selector}") as selector,
    ):
        k.apply(model("steps", "2", rollout=rollout))

        def promoted() -> bool:
            st = status(k, "steps")
            return st.get("stableVersion") == "2" and st.get("phase") == "Ready"

        eventually(promoted, timeout=90, what="promotion of version 2")
        canary.wait_caught_up()
        selector.wait_caught_up()
    seen = [state.split(" ") for state in canary.states]
    weights = [int(w) for v, w in seen if v == "2" and w]
    assert weights == sorted(weights), seen  # never goes back, never skips backwards
    assert 25 in weights and 50 in weights, seen
    # ReplicaRatio: while a canary has a share, the model Service selects both tracks.
    assert any(naming.LABEL_VERSION not in state for state in selector.states), selector.states
    eventually(lambda: k.get("deployment", "steps-v1") is None, what="old stable removed")
    events = json.loads(
        k.run("get", "events", "--field-selector", "involvedObject.name=steps", "-o", "json")
    )["items"]
    reasons = [e["reason"] for e in events]
    assert "RolloutStarted" in reasons and "Promoted" in reasons


def test_an_unreachable_prometheus_holds_the_step_then_rolls_back_at_the_deadline(
    operator: OperatorProcess, k: Kubectl
) -> None:
    """Prometheus unreachable: no verdict, so no failed check (even with maxFailedChecks 1);
    the step holds until progressDeadline, then the canary goes at once and stays gone."""
    prometheus = f"http://127.0.0.1:{free_port()}"
    rollout = {
        "steps": [20, 40],
        "stepInterval": "1s",
        "progressDeadline": "15s",
        "analysis": {"prometheusUrl": prometheus, "successRate": {"min": 99}, "maxFailedChecks": 1},
    }
    k.apply(model("sad", "1", rollout=rollout))
    wait_ready(k, "sad")
    k.apply(model("sad", "2", rollout=rollout))

    def held() -> dict[str, Any] | None:
        st = status(k, "sad")
        progressing = condition(k.get("md", "sad"), "Progressing")
        return st if progressing.get("reason") == "AnalysisUnavailable" else None

    st = eventually(held, timeout=60, interval=0.3, what="the step held")
    assert st["phase"] == "Progressing" and st["failedChecks"] == 0 and st["canaryWeight"] == 20

    def failed() -> dict[str, Any] | None:
        st = status(k, "sad")
        return st if st.get("phase") == "Failed" else None

    st = eventually(failed, timeout=60, what="phase Failed")
    assert st["stableVersion"] == "1"
    assert st.get("canaryVersion") is None and st.get("lastAnalysis") is None
    progressing = condition(k.get("md", "sad"), "Progressing")
    assert progressing["status"] == "False"
    assert progressing["reason"] == "ProgressDeadlineExceeded"
    events = json.loads(
        k.run("get", "events", "--field-selector", "involvedObject.name=sad", "-o", "json")
    )["items"]
    rolled_back = [e["message"] for e in events if e["reason"] == "RolledBack"]
    assert len(rolled_back) == 1, rolled_back
    assert (
        f"no answer from Prometheus within 15s: cannot reach Prometheus at {prometheus}"
        in (rolled_back[0])
    )
    assert not [e for e in events if e["reason"] == "AnalysisFailed"]
    eventually(lambda: k.get("deployment", "sad-v2") is None, what="canary removed")
    svc = k.get("service", "sad")
    assert svc is not None and svc["spec"]["selector"][naming.LABEL_VERSION] == "1"
    # It stays rolled back (no retry loop) until the spec changes.
    time.sleep(3)
    assert status(k, "sad")["phase"] == "Failed"
    assert k.get("deployment", "sad-v2") is None


def test_setting_the_version_back_aborts_at_once(operator: OperatorProcess, k: Kubectl) -> None:
    rollout = {"steps": [50], "stepInterval": "1h"}
    k.apply(model("back", "1", rollout=rollout))
    wait_ready(k, "back")
    k.apply(model("back", "2", rollout=rollout))
    eventually(lambda: status(k, "back").get("canaryWeight") == 50, what="canary at 50%")
    k.apply(model("back", "1", rollout=rollout))

    def aborted() -> bool:
        st = status(k, "back")
        return st.get("canaryVersion") is None and st.get("phase") == "Ready"

    eventually(aborted, timeout=20, what="aborted")
    eventually(lambda: k.get("deployment", "back-v2") is None, what="canary removed")


def test_a_restarted_operator_continues_the_rollout_without_double_stepping(
    operator: OperatorProcess, k: Kubectl
) -> None:
    interval = 12
    rollout = {"steps": [10, 20], "stepInterval": f"{interval}s"}
    k.apply(model("resume", "1", rollout=rollout))
    wait_ready(k, "resume")
    k.apply(model("resume", "2", rollout=rollout))
    eventually(lambda: status(k, "resume").get("canaryWeight") == 10, what="first step")
    before = status(k, "resume")
    operator.restart()
    after = status(k, "resume")
    if after.get("currentStep") == before.get("currentStep"):
        # The restart itself moved nothing: same step, same start time.
        assert after.get("stepStartedAt") == before.get("stepStartedAt")
    else:
        # A slow machine outlasted the step during the restart: the step may move once, and
        # only when its interval has passed (the times are whole seconds).
        assert after.get("currentStep") == before.get("currentStep", 0) + 1
        held = timestamp(after["stepStartedAt"]) - timestamp(before["stepStartedAt"])
        assert held >= interval - 1, (before, after)
    eventually(lambda: status(k, "resume").get("stableVersion") == "2", timeout=60, what="done")


def test_plugin_requests_promote_a_paused_rollout(operator: OperatorProcess, k: Kubectl) -> None:
    rollout = {"steps": [10, 50], "stepInterval": "1h"}
    k.apply(model("manual", "1", rollout=rollout))
    wait_ready(k, "manual")
    k.apply(model("manual", "2", rollout=rollout))
    eventually(lambda: status(k, "manual").get("canaryWeight") == 10, what="first step")

    k.run("annotate", "md/manual", "--overwrite",
          "modeldeploy.dev/request=promote", "modeldeploy.dev/request-id=req-1",
          "modeldeploy.dev/request-canary=2")  # fmt: skip

    def promoted() -> bool:
        st = status(k, "manual")
        return st.get("stableVersion") == "2" and st.get("lastRequestId") == "req-1"

    eventually(promoted, timeout=20, what="promoted by request")


def plugin(k: Kubectl, *args: str) -> subprocess.CompletedProcess[str]:
    """The real kubectl plugin, as a user runs it."""
    command = [str(PLUGIN), *args, "-n", str(k.namespace), "--kubeconfig", str(k.kubeconfig)]
    return subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)


def test_plugin_pauses_resumes_and_aborts(operator: OperatorProcess, k: Kubectl) -> None:
    rollout = {"steps": [10, 50], "stepInterval": "3s"}
    k.apply(model("steer", "1", rollout=rollout))
    wait_ready(k, "steer")
    k.apply(model("steer", "2", rollout=rollout))
    eventually(lambda: status(k, "steer").get("canaryWeight") == 10, what="first step")

    paused = plugin(k, "pause", "steer", "--wait")
    assert paused.returncode == 0, paused.stderr
    assert condition(k.get("md", "steer"), "Progressing")["reason"] == "PausedByRequest"
    held = status(k, "steer")["pauseConditions"]
    assert [p["reason"] for p in held] == ["PausedByRequest"] and held[0]["startTime"], held
    time.sleep(5)  # longer than stepInterval: a paused rollout does not move
    assert status(k, "steer").get("canaryWeight") == 10

    shown = plugin(k, "status", "steer")
    assert shown.returncode == 0 and "10" in shown.stdout, shown.stdout

    resumed = plugin(k, "resume", "steer", "--wait")
    assert resumed.returncode == 0, resumed.stderr
    eventually(lambda: status(k, "steer").get("canaryWeight") == 50, what="resumed to 50%")
    assert "pauseConditions" not in status(k, "steer")

    aborted = plugin(k, "abort", "steer", "--wait")
    assert aborted.returncode == 0, aborted.stderr
    eventually(lambda: status(k, "steer").get("phase") == "Failed", what="aborted")
    progressing = condition(k.get("md", "steer"), "Progressing")
    assert progressing["reason"] == "Aborted"
    eventually(lambda: k.get("deployment", "steer-v2") is None, what="canary removed")


def test_a_newer_version_mid_rollout_restarts_from_stable(
    operator: OperatorProcess, k: Kubectl
) -> None:
    rollout = {"steps": [10, 50], "stepInterval": "1h"}
    k.apply(model("newer", "1", rollout=rollout))
    wait_ready(k, "newer")
    k.apply(model("newer", "2", rollout=rollout))
    eventually(lambda: status(k, "newer").get("canaryWeight") == 10, what="v2 at 10%")
    k.apply(model("newer", "3", rollout=rollout))

    def restarted() -> bool:
        st = status(k, "newer")
        return st.get("canaryVersion") == "3" and st.get("canaryWeight") == 10

    eventually(restarted, what="v3 at its first step")
    assert status(k, "newer")["stableVersion"] == "1"
    eventually(lambda: k.get("deployment", "newer-v2") is None, what="v2 removed")


def test_the_old_version_is_retired_only_after_traffic_has_left_it(
    operator: OperatorProcess, k: Kubectl
) -> None:
    rollout = {"strategy": "Immediate", "scaleDownDelay": "20s"}
    k.apply(model("retire", "1", rollout=rollout))
    wait_ready(k, "retire")
    k.apply(model("retire", "2", rollout=rollout))

    def promoted() -> bool:
        svc = k.get("service", "retire")
        selected = svc["spec"]["selector"].get(naming.LABEL_VERSION) if svc else None
        return selected == "2" and status(k, "retire").get("stableVersion") == "2"

    eventually(promoted, what="version 2 serves all traffic")
    # The route has moved; the old version still runs while routers and endpoints catch up.
    old = k.get("deployment", "retire-v1")
    assert old is not None and old["metadata"].get("deletionTimestamp") is None
    assert k.get("service", "retire-v1") is not None
    eventually(lambda: k.get("deployment", "retire-v1") is None, what="v1 retired")
    assert k.get("service", "retire-v1") is None


def test_serving_pods_pause_before_they_drain(operator: OperatorProcess, k: Kubectl) -> None:
    """The apiserver accepts the pod's termination sequence as built."""
    k.apply(model("drain", "1"))
    wait_ready(k, "drain")
    [pod] = k.list("pods", f"{naming.LABEL_MODEL}=drain")[:1]
    [server] = [c for c in pod["spec"]["containers"] if c["name"] == "server"]
    pause = server["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = int(server["args"][server["args"].index("--graceful-timeout") + 1])
    assert pause > 0 and pod["spec"]["terminationGracePeriodSeconds"] > pause + drain
