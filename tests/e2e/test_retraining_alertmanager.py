"""The Alertmanager trigger end to end on the local cluster: a real Alertmanager (Debian
`prometheus-alertmanager`) routes an alert posted to its API to the webhook receiver of a real
operator (`--alertmanager-token-file`, `--alertmanager-port`), and a RetrainingPolicy whose
trigger names the alert makes exactly one RetrainingRun in the cluster, although Alertmanager
notifies again every couple of seconds (group_interval 1s, repeat_interval 2s).

The operator is this test's own, for a namespace outside `<TEST_PREFIX>-*` (the session's
operator serves no receiver, and would write the policy's AlertReceiver condition False). The
target follows an MLflow alias (as in test_retraining.py), so the run can start; its trainer
crashes at once, so the run finishes (Failed) and no guard but the per-firing de-duplication
stands between the repeats and a second run (cooldown 1s, suspendAfterFailures 100).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from modeldeploy_operator.local_mlflow import MlflowServer
from modeldeploy_operator.retraining.receiver import PATH

from tests.e2e.test_retraining import (
    data_url,  # noqa: F401 (a fixture)
    following,
    policy,
    register_champion,
    runs_of,
    trainer_config_map,
)
from tests.support.kube import TEST_PREFIX, Kubectl, eventually
from tests.support.operator_process import OperatorProcess
from tests.support.ports import free_port

ALERTMANAGER: Final = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
ALERT: Final = "ModelDriftForRetraining"
TOKEN: Final = "the-receivers-token"
# Seconds of repeated notifications watched from the run's start, and again once it finished.
REPEATS: Final = 20

pytestmark = pytest.mark.usefixtures("retraining_crds")


def alertmanager_config(receiver_url: str, token_file: Path) -> str:
    return yaml.safe_dump(
        {
            "route": {
                "receiver": "modeldeploy",
                "group_by": ["alertname"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "2s",
            },
            "receivers": [
                {
                    "name": "modeldeploy",
                    "webhook_configs": [
                        {
                            "url": receiver_url,
                            "send_resolved": True,
                            "http_config": {
                                "authorization": {
                                    "type": "Bearer",
                                    "credentials_file": str(token_file),
                                }
                            },
                        }
                    ],
                }
            ],
        }
    )


class Alertmanager:
    """A real Alertmanager process on a free loopback port, its log in `directory`."""

    def __init__(self, directory: Path, receiver_url: str, token_file: Path) -> None:
        # Fail, not skip: this test is the only proof on the cluster that the trigger works.
        assert ALERTMANAGER is not None, (
            "no Alertmanager binary on PATH (Debian: apt-get install prometheus-alertmanager)"
        )
        config = directory / "alertmanager.yml"
        config.write_text(alertmanager_config(receiver_url, token_file))
        self.port = free_port()
        self.log_path = directory / "alertmanager.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                ALERTMANAGER, f"--config.file={config}", f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
            ],
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        assert self.proc.poll() is None, f"Alertmanager exited; see {self.log_path}"
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def post_alert(self, labels: dict[str, str]) -> None:
        request = urllib.request.Request(
            f"{self.url}/api/v2/alerts",
            data=json.dumps([{"labels": labels}]).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert answer.status == 200, answer.read()

    def webhook_notifications(self) -> tuple[float, float]:
        """Alertmanager's own count of webhook notifications: (sent, failed)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as answer:
            text = answer.read().decode()

        def total(metric: str) -> float:
            pattern = rf'^{metric}{{[^}}]*integration="webhook"[^}}]*}} (\S+)$'
            return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE))

        return (
            total("alertmanager_notifications_total"),
            total("alertmanager_notifications_failed_total"),
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture
def own_namespace(kube: Kubectl) -> Iterator[Kubectl]:
    """`<TEST_PREFIX>alertmanager-…`, outside `<TEST_PREFIX>-*` (as the chart tests name theirs):
    only this test's operator acts here."""
    name = f"{TEST_PREFIX}alertmanager-{uuid.uuid4().hex[:6]}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    yield kube.in_namespace(name)
    kube.delete("namespace", name)


def conditions_of(found: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (found or {}).get("status", {}).get("conditions", [])}


def test_repeated_alertmanager_notifications_make_exactly_one_run(
    own_namespace: Kubectl,
    mlflow: MlflowServer,
    data_url: str,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    k = own_namespace
    namespace = str(k.namespace)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    receiver_port = free_port()
    operator = OperatorProcess(
        k.kubeconfig, tmp_path / "operator.log",
        "--alertmanager-token-file", str(token_file),
        "--alertmanager-port", str(receiver_port),
        namespaces=namespace,
    )  # fmt: skip
    alertmanager = Alertmanager(tmp_path, f"http://127.0.0.1:{receiver_port}{PATH}", token_file)
    try:
        operator.start()
        registered = f"{namespace}-iris"
        register_champion(mlflow, data_url, registered)
        trainer_config_map(k)
        k.apply(following("iris", mlflow, registered))
        alerted = policy("iris-alert", "iris", data_url, "http://unused.invalid")
        alerted["spec"]["triggers"] = {
            "alertmanager": {"alertName": ALERT, "matchers": {"namespace": namespace}}
        }
        alerted["spec"]["guards"] = {
            "cooldown": "1s", "maxRuns": 100, "window": "1h", "suspendAfterFailures": 100,
        }  # fmt: skip
        # The trainer crashes at once: the run finishes (Failed) and leaves no guard holding.
        spec = alerted["spec"]["training"]["jobTemplate"]["template"]["spec"]
        [container] = spec["containers"]
        container["command"], container["args"] = ["python", "-c", "raise SystemExit(3)"], []
        k.apply(alerted)

        def armed() -> dict[str, Any] | None:
            found = k.get("retrainingpolicy", "iris-alert")
            conditions = conditions_of(found)
            ok = conditions.get("Armed", {}).get("status") == "True"
            return found if ok and "AlertReceiver" in conditions else None

        found = eventually(armed, timeout=90, what="the policy Armed (its target follows)")
        receiver = conditions_of(found)["AlertReceiver"]
        assert (receiver["status"], receiver["reason"]) == ("True", "ReceiverServed"), receiver
        assert runs_of(k, "iris-alert") == []

        eventually(alertmanager.ready, timeout=30, what="Alertmanager ready")
        posted = time.monotonic()
        alertmanager.post_alert({"alertname": ALERT, "namespace": namespace, "severity": "page"})
        [run] = eventually(
            lambda: runs_of(k, "iris-alert"), timeout=60, what="a run started by the alert"
        )
        print(f"alert posted → RetrainingRun {run['metadata']['name']}: "
              f"{time.monotonic() - posted:.1f}s")  # fmt: skip

        trigger = run["spec"]["trigger"]
        assert trigger["source"] == "alertmanager", trigger
        assert trigger["alert"]["name"] == ALERT, trigger
        fingerprint = trigger["alert"]["fingerprint"]

        def repeats_make_no_second_run(what: str) -> None:
            sent_before, _ = alertmanager.webhook_notifications()
            deadline = time.monotonic() + REPEATS
            while time.monotonic() < deadline:
                runs = runs_of(k, "iris-alert")
                assert len(runs) == 1, [r["metadata"]["name"] for r in runs]
                time.sleep(1)
            sent, failed = alertmanager.webhook_notifications()
            print(f"{what}: {sent - sent_before:.0f} notifications in {REPEATS}s, one run")
            # repeat_interval 2s: several repeats reached the receiver in the window, none refused.
            assert sent - sent_before >= 3, (sent_before, sent)
            assert failed == 0, f"refused notifications; see {alertmanager.log_path}"

        repeats_make_no_second_run("from the run's start")

        status = (k.get("retrainingpolicy", "iris-alert") or {})["status"]
        last = status["lastTrigger"]
        assert last["source"] == "alertmanager", last
        assert last["alert"]["name"] == ALERT and last["alert"]["fingerprint"] == fingerprint
        assert last.get("run") == run["metadata"]["name"], last

        # Finished, with cooldown 1s: only the firing's de-duplication holds the repeats back.
        def finished() -> dict[str, Any] | None:
            [current] = runs_of(k, "iris-alert")
            return current if current.get("status", {}).get("phase") == "Failed" else None

        eventually(finished, timeout=180, what="the run Failed (its trainer crashes)")
        repeats_make_no_second_run("after the run finished")
    finally:
        alertmanager.stop()
        operator.stop()
        print(f"operator log: {operator.log_path}; Alertmanager log: {alertmanager.log_path}")
