"""`make demo`: the whole path on the local control plane, narrated.

Trains and saves a real iris model, serves it with the real model server for one prediction,
installs the CRD, starts the operator in the background, applies `examples/iris.yaml` and waits
for the ModelDeployment to become Ready on the real node, then shows what the operator built and
a prediction from its pods through the model's Service. Then it rolls out version 2 through the
local Gateway (Traefik), printing the weight the operator declares next to the split measured
over requests sent meanwhile. The cluster and the operator keep running afterwards; `make
cluster-down` stops both.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from modeldeploy_operator import naming

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".cluster"
KUBECONFIG = STATE / "kubeconfig"
OPERATOR_PID = STATE / "operator.pid"
OPERATOR_LOG = STATE / "operator.log"
EXAMPLE = ROOT / "examples" / "iris.yaml"
CRD = ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"
DEMO_NAMESPACE = "default"
# The local Gateway (cluster/platform/gateway.sh); the example itself names none, so that it
# works on any cluster.
GATEWAY = {"name": "web", "namespace": "modeldeploy-system"}
DEMO_HOSTNAME = "iris.demo.local"
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def say(text: str) -> None:
    print(f"==> {text}", flush=True)


def kubectl(*args: str, capture: bool = False) -> str:
    env = {**os.environ, "KUBECONFIG": str(KUBECONFIG)}
    proc = subprocess.run(
        ["kubectl", *args], env=env, check=True, text=True, capture_output=capture
    )
    return proc.stdout if capture else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def train_model(directory: Path) -> str:
    import joblib
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    directory.mkdir(parents=True, exist_ok=True)
    features, target = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(features, target)
    path = directory / "model.joblib"
    joblib.dump(model, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    # The training features' distribution, which the server's drift metrics compare against.
    features_path = directory.parent / "train-features.npy"
    np.save(features_path, features)
    subprocess.run(
        [sys.executable, "-m", "modeldeploy_operator.cli", "reference", "--model-dir",
         str(directory), "--data", str(features_path), "--sha256", digest],
        check=True,
    )  # fmt: skip
    return digest


def predict_locally(directory: Path, digest: str) -> None:
    """The same server the pods run, on this machine, answering one V1 request."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "modeldeploy_operator.cli", "serve", "--model-dir", str(directory),
         "--name", "iris", "--version", "1", "--port", str(port), "--sha256", digest],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{base}/v2/health/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        body = json.dumps({"instances": IRIS_ROWS}).encode()
        request = urllib.request.Request(
            f"{base}/v1/models/iris:predict",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            say(f"local model server answered: {resp.read().decode()}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def start_operator() -> None:
    if OPERATOR_PID.exists():
        pid = int(OPERATOR_PID.read_text())
        try:
            os.kill(pid, 0)
            say(f"operator already running (pid {pid})")
            return
        except ProcessLookupError:
            OPERATOR_PID.unlink()
    port = free_port()
    env = {**os.environ, "KUBECONFIG": str(KUBECONFIG)}
    with OPERATOR_LOG.open("ab") as log:
        proc = subprocess.Popen(
            # Only the demo's namespace: a later `make test` runs its own operator for `t-*`.
            [sys.executable, "-m", "modeldeploy_operator.cli", "operator", "--namespace",
             DEMO_NAMESPACE, "--metrics-port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    OPERATOR_PID.write_text(str(proc.pid))
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as resp:
                if resp.status == 200:
                    say(
                        f"operator running (pid {proc.pid}, metrics http://127.0.0.1:{port}/metrics)"
                    )
                    return
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"the operator exited; see {OPERATOR_LOG}") from None
            time.sleep(0.2)
    raise SystemExit(f"the operator did not become ready; see {OPERATOR_LOG}")


def wait_ready(name: str, timeout: float = 120, namespace: str = DEMO_NAMESPACE) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        md = json.loads(kubectl("get", "md", name, "-n", namespace, "-o", "json", capture=True))
        status = md.get("status", {})
        line = f"phase={status.get('phase', '-')} " + " ".join(
            f"{c['type']}={c['status']}({c.get('reason', '')})"
            for c in status.get("conditions", [])
        )
        if line != last:
            say(line)
            last = line
        if (
            status.get("phase") == "Ready"
            and status.get("observedGeneration") == md["metadata"]["generation"]
        ):
            return dict(md)
        time.sleep(1)
    raise SystemExit(f"{name} did not become Ready in {timeout:.0f}s; see {OPERATOR_LOG}")


def predict_through_the_service(name: str) -> None:
    service = json.loads(kubectl("get", "service", name, "-o", "json", capture=True))
    port = service["spec"]["ports"][0]["port"]
    url = f"http://{service['spec']['clusterIP']}:{port}/v1/models/{name}:predict"
    body = json.dumps({"instances": IRIS_ROWS}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    # Ready pods reach kube-proxy's rules a moment after they are ready.
    for _ in range(50):
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                say(f"the pods answered through Service {name} ({url}): {resp.read().decode()}")
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"no answer through Service {name} at {url}")


def gateway_address() -> tuple[str, int]:
    gateway = json.loads(
        kubectl("get", "gateway", "-n", GATEWAY["namespace"], GATEWAY["name"], "-o", "json",
                capture=True)
    )  # fmt: skip
    port = gateway["spec"]["listeners"][0]["port"]
    return gateway["status"]["addresses"][0]["value"], int(port)


def ask_gateway(connection: http.client.HTTPConnection, name: str) -> str:
    """The version that answered one V2 request through the Gateway, or the error."""
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": IRIS_ROWS[0]}]}
    connection.request(
        "POST",
        f"/v2/models/{name}/infer",
        body=json.dumps(body),
        headers={"Host": DEMO_HOSTNAME, "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    text = response.read().decode()
    if response.status != 200:
        return f"HTTP {response.status}"
    return str(json.loads(text)["model_version"])


def roll_out_through_the_gateway(name: str) -> None:
    """Route through the local Gateway, then roll out version 2 with short steps, printing the
    declared weight and the split measured over the requests of each 2-second period."""
    traffic = {"router": "GatewayAPI", "gatewayRef": GATEWAY, "hostnames": [DEMO_HOSTNAME]}
    gateway = f"{GATEWAY['namespace']}/{GATEWAY['name']}"
    say(f"routing {name} through the Gateway {gateway} (host {DEMO_HOSTNAME})")
    patch = json.dumps({"spec": {"traffic": traffic}})
    kubectl("patch", "md", name, "--type", "merge", "-p", patch)
    host, port = gateway_address()
    connection = http.client.HTTPConnection(host, port, timeout=10)
    for _ in range(100):
        try:
            if ask_gateway(connection, name) == "1":
                break
        except (OSError, http.client.HTTPException):
            connection.close()
        time.sleep(0.2)
    else:
        raise SystemExit(f"no answer from version 1 through the Gateway at {host}:{port}")
    version_2 = {
        "model": {"version": "2", "storageUri": "http://iris-model-store/iris/2/model.joblib"},
        "rollout": {"stepInterval": "10s"},
    }
    say("kubectl patch md iris: version 2, steps of 10s (the example's are 60s)")
    kubectl("patch", "md", name, "--type", "merge", "-p", json.dumps({"spec": version_2}))
    print(f"    {'time':>5}  {'declared':>8}  measured over the last 2 s", flush=True)
    started = time.monotonic()
    while time.monotonic() - started < 300:
        answers: dict[str, int] = {}
        period_end = time.monotonic() + 2
        while time.monotonic() < period_end:
            try:
                version = ask_gateway(connection, name)
            except (OSError, http.client.HTTPException) as e:
                version = type(e).__name__
                connection.close()
            answers[version] = answers.get(version, 0) + 1
        status = json.loads(kubectl("get", "md", name, "-o", "json", capture=True))["status"]
        total = sum(answers.values())
        declared = f"{status.get('canaryWeight', 0)}%" if status.get("canaryVersion") else "-"
        shares = ", ".join(f"v{v}: {100 * n / total:.0f}%" for v, n in sorted(answers.items()))
        print(f"    {time.monotonic() - started:4.0f}s  {declared:>8}  {shares} ({total} requests)",
              flush=True)  # fmt: skip
        if status.get("stableVersion") == "2" and status.get("phase") == "Ready":
            say("version 2 promoted: it serves all traffic")
            return
    raise SystemExit(f"version 2 was not promoted in 300s; see {OPERATOR_LOG}")


def main() -> int:
    model_dir = STATE / "models" / "iris" / "1"
    say(f"training an iris classifier into {model_dir}")
    digest = train_model(model_dir)
    say(f"model.joblib sha256 {digest}")
    predict_locally(model_dir, digest)
    say("installing the ModelDeployment CRD")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kubectl("wait", "--for=condition=Established", "crd/modeldeployments.modeldeploy.dev")
    start_operator()
    # A second run starts over: the first one left version 2 routed through the Gateway.
    kubectl("delete", "md", "iris", "--namespace", DEMO_NAMESPACE, "--ignore-not-found", "--wait")
    say(f"kubectl apply -f {EXAMPLE.relative_to(ROOT)}")
    kubectl("apply", "--namespace", DEMO_NAMESPACE, "-f", str(EXAMPLE))
    md = wait_ready("iris", timeout=300)
    say("what the operator built:")
    kubectl("get", "md,deploy,svc,hpa", "-o", "wide")
    kubectl("get", "pods", "-l", f"{naming.LABEL_MODEL}=iris", "-o", "wide")
    predict_through_the_service("iris")
    say("status conditions:")
    for cond in md["status"]["conditions"]:
        reason, message = cond.get("reason", ""), cond.get("message", "")
        print(f"    {cond['type']:<12} {cond['status']:<6} {reason}: {message}")
    roll_out_through_the_gateway("iris")
    say(
        "the cluster and the operator keep running (KUBECONFIG=.cluster/kubeconfig); "
        "`make cluster-down` stops everything"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
