"""Benchmark of the model server against KServe's and MLServer, on one machine (not a test).

    .venv/bin/python bench/serving/run.py [--duration 10] [--warmup 3] [--connections 16]

For each model (LogisticRegression on iris, a RandomForest of 100 trees, a StandardScaler +
LogisticRegression Pipeline, a HistGradientBoosting classifier, a ColumnTransformer Pipeline of
numeric and categorical columns; saved once with joblib and scikit-learn 1.9.1) and each payload
(batch 1 and batch 32), every server is started pinned to CPU 0 and loaded by `wrk` pinned to
CPU 1 at fixed concurrency: one warm-up run that is thrown away, then the measured run. Before
load, each server's answer is checked against `model.predict` on the same rows; runs with any
non-2xx answer are marked invalid. Peers run in their own virtual environments under
~/.cache/modeldeploy/bench-venvs/<name>-<version> (created here with `python3 -m venv` and pip,
same scikit-learn) with their defaults, plus the tuned settings users reach for. Also measured:
the in-process floor (`model.predict` calls per second, no HTTP) and the ceiling (a bare ASGI
app on our HTTP stack). Results go to bench/results/serving.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "modeldeploy"
VENVS = CACHE / "bench-venvs"
WORK = CACHE / "bench-work"
RESULTS = ROOT / "bench" / "results" / "serving.md"
SKLEARN = "1.9.1"
SERVER_CPU, LOAD_CPU = "0", "1"
BATCHES = (1, 32)

PEER_VENVS: dict[str, list[str]] = {
    "kserve-0.21.0": ["kserve==0.21.0", f"scikit-learn=={SKLEARN}", "joblib"],
    "mlserver-1.7.1": [
        "mlserver==1.7.1",
        "mlserver-sklearn==1.7.1",
        f"scikit-learn=={SKLEARN}",
        "joblib",
    ],
    # MLServer's worker pool fails with uvloop >= 0.22 (MLServer#2286): the same install with
    # the last uvloop it works with, so that its defaults can be measured at all.
    "mlserver-1.7.1-uvloop0.21": [
        "mlserver==1.7.1",
        "mlserver-sklearn==1.7.1",
        f"scikit-learn=={SKLEARN}",
        "joblib",
        "uvloop<0.22",
    ],
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- setup ------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("installing wrk (Debian package)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed and could not be installed")
    return found


def ensure_venv(name: str, requirements: list[str]) -> tuple[Path | None, str]:
    """The venv's python, or None and the reason it could not be installed."""
    venv = VENVS / name
    marker = venv / ".modeldeploy-installed"
    wanted = "\n".join(requirements)
    if marker.is_file() and marker.read_text() == wanted:
        return venv / "bin" / "python", ""
    log(f"creating {venv}")
    VENVS.mkdir(parents=True, exist_ok=True)
    if not (venv / "bin" / "python").exists():
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", *requirements],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return None, f"pip install {' '.join(requirements)} failed: {result.stderr[-800:]}"
    marker.write_text(wanted)
    return venv / "bin" / "python", ""


def package_version(python: Path, package: str) -> str:
    out = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "?"


def build_models() -> dict[str, Path]:
    X, y = load_iris(return_X_y=True)
    estimators = {
        "LogisticRegression (iris)": LogisticRegression(max_iter=1000),
        "RandomForest, 100 trees (iris)": RandomForestClassifier(n_estimators=100, random_state=0),
        "Pipeline: StandardScaler + LogisticRegression (iris)": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=1000)
        ),
        "HistGradientBoosting, 100 iterations (iris)": HistGradientBoostingClassifier(
            random_state=0
        ),
        # Mixed input as tabular teams send it: numeric columns scaled, a categorical one
        # (here iris' petal width, 22 distinct values, as a category code) one-hot encoded.
        "Pipeline: ColumnTransformer(StandardScaler on 3 columns, OneHotEncoder on 1) + "
        "LogisticRegression (iris)": make_pipeline(
            ColumnTransformer(
                [
                    ("numeric", StandardScaler(), [0, 1, 2]),
                    ("category", OneHotEncoder(handle_unknown="ignore"), [3]),
                ],
                sparse_threshold=0.0,
            ),
            LogisticRegression(max_iter=1000),
        ),
    }
    paths = {}
    for i, (name, estimator) in enumerate(estimators.items()):
        directory = WORK / "models" / f"model{i}"
        directory.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed: a server of another run (request_cost.py's run beside
        # this one) loading the model meanwhile reads the old file or the new, never half of one.
        partial = directory / f"model.joblib.{os.getpid()}"
        joblib.dump(estimator.fit(X, y), partial)
        partial.replace(directory / "model.joblib")
        paths[name] = directory
    return paths


def rows(batch: int) -> np.ndarray:
    X, _ = load_iris(return_X_y=True)
    picked: np.ndarray = X[np.arange(batch) * 37 % len(X)]
    return picked


def body(protocol: str, batch: int) -> str:
    data = rows(batch)
    if protocol == "v1":
        return json.dumps({"instances": data.tolist()})
    tensor = {
        "name": "input-0",
        "shape": list(data.shape),
        "datatype": "FP64",
        "data": data.ravel().tolist(),
    }
    return json.dumps({"inputs": [tensor]})


# -- servers ----------------------------------------------------------------------------------


@dataclass
class Target:
    label: str
    protocol: str  # v1 | v2
    port: int
    command: list[str]
    ready_path: str
    infer_path: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    note: str = ""


def serve_args(
    model_dir: Path, port: int, micro_batch: int = 0, fast_path: bool = True
) -> list[str]:
    """The flags of `modeldeploy serve` for a benchmarked server: the one home of our server's
    benchmark settings, which request_cost.py uses too, so that its counts are of the server
    measured here."""
    extra = ["--micro-batch-rows", str(micro_batch)] if micro_batch else []
    if not fast_path:
        extra.append("--no-fast-path")
    return [
        "--model-dir",
        str(model_dir),
        "--name",
        "m",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *extra,
    ]


def ours(
    model_dir: Path, port: int, protocol: str, micro_batch: int = 0, fast_path: bool = True
) -> Target:
    return Target(
        label="modeldeploy"
        + (f", --micro-batch-rows {micro_batch}" if micro_batch else "")
        + ("" if fast_path else ", --no-fast-path (scikit-learn serves)"),
        protocol=protocol,
        port=port,
        command=[
            str(ROOT / ".venv" / "bin" / "python"),
            "-m",
            "modeldeploy_serving.server",
            *serve_args(model_dir, port, micro_batch, fast_path),
        ],
        ready_path="/v2/health/ready",
        infer_path="/v1/models/m:predict" if protocol == "v1" else "/v2/models/m/infer",
        env={"PYTHONPATH": str(ROOT / "serving")},
    )


def kserve(python: Path, model_dir: Path, port: int, tuned: bool) -> Target:
    command = [
        str(python),
        str(HERE / "peers" / "kserve_sklearn.py"),
        "--model_name",
        "m",
        "--model_dir",
        str(model_dir),
        "--http_port",
        str(port),
        "--grpc_port",
        str(free_port()),
    ]
    if tuned:
        command += ["--enable_latency_logging", "false", "--enable_grpc", "false"]
    return Target(
        label="KServe 0.21.0, " + ("latency logging and gRPC off" if tuned else "defaults"),
        protocol="v1",
        port=port,
        command=command,
        ready_path="/v1/models/m",
        infer_path="/v1/models/m:predict",
    )


def mlserver(python: Path, model_dir: Path, port: int, label: str, parallel: int | None) -> Target:
    home = WORK / f"mlserver-{port}"
    (home / "m").mkdir(parents=True, exist_ok=True)
    settings: dict[str, Any] = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
    }
    if parallel is not None:
        settings["parallel_workers"] = parallel
    (home / "settings.json").write_text(json.dumps(settings))
    (home / "m" / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "m",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": str(model_dir / "model.joblib")},
            }
        )
    )
    return Target(
        label=label,
        protocol="v2",
        port=port,
        command=[str(python.parent / "mlserver"), "start", str(home)],
        ready_path="/v2/models/m/ready",
        infer_path="/v2/models/m/infer",
        cwd=home,
    )


def hello(port: int) -> Target:
    return Target(
        label="ceiling: bare ASGI on our HTTP stack",
        protocol="v1",
        port=port,
        command=[str(ROOT / ".venv" / "bin" / "python"), str(HERE / "hello.py"), str(port)],
        ready_path="/",
        infer_path="/",
    )


class Running:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.url = f"http://127.0.0.1:{target.port}"
        self.log = WORK / f"server-{target.port}.log"
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *target.command],
            env={**os.environ, **target.env},
            cwd=target.cwd,
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 90) -> str:
        """'' when ready, else why not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"exited with {self.proc.returncode}: {self.tail()}"
            try:
                if httpx.get(self.url + self.target.ready_path, timeout=2).status_code == 200:
                    return ""
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        return f"not ready after {timeout:.0f} s: {self.tail()}"

    def tail(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        errors = [line for line in text.splitlines() if "Error" in line or "error" in line]
        return (errors[-1] if errors else text[-300:]).strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def check_answer(running: Running, batch: int, expected: np.ndarray) -> str:
    """'' when the server's predictions equal model.predict on the payload's rows."""
    reply = httpx.post(
        running.url + running.target.infer_path,
        content=body(running.target.protocol, batch),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    if reply.status_code != 200:
        return f"HTTP {reply.status_code}: {reply.text[:200]}"
    doc = reply.json()
    got = doc["predictions"] if "predictions" in doc else doc["outputs"][0]["data"]
    if np.asarray(got).reshape(-1).tolist() != expected.tolist():
        return f"wrong predictions: {got[:5]} vs {expected[:5].tolist()}"
    return ""


@dataclass
class Measure:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: str
    # From the server process's threads' /proc schedstat over the measured run (not its child
    # processes): CPU time per request, which the machine's load hardly changes, and the share
    # of its runnable time spent waiting for CPU 0, which is the load. Requests/s follow from
    # both, so a row's req/s can be read against another row's taken at a different load.
    cpu_us_per_request: float = float("nan")
    wait_share: float = float("nan")


def schedstat(pid: int) -> tuple[int, int] | None:
    """Nanoseconds the threads of process `pid` have run on a CPU and waited on a run queue;
    None once the process has exited."""
    on_cpu = waited = 0
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return None
    for task in tasks:
        try:
            fields = (task / "schedstat").read_text().split()
        except OSError:  # the thread has just ended
            continue
        on_cpu += int(fields[0])
        waited += int(fields[1])
    return on_cpu, waited


def _ms(text: str, percentile: str) -> float:
    match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(wrk_bin: str, running: Running, batch: int, seconds: int, connections: int) -> Measure:
    target = running.target
    script = WORK / f"wrk-{target.protocol}-{batch}.lua"
    # The ceiling (hello.py, at "/") gets the very request our V1 rows get: a GET without a
    # body costs the server less (no body to parse and receive), so it was a higher ceiling
    # than the one our requests can reach (request_cost.py counts both).
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [=[{body(target.protocol, batch)}]=]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    before = schedstat(running.proc.pid)
    out = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CPU,
            wrk_bin,
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            running.url + target.infer_path,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    after = schedstat(running.proc.pid)
    cpu = waited = 0  # a server that exited during the run reports no CPU time
    if before is not None and after is not None:
        cpu, waited = after[0] - before[0], after[1] - before[1]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    requests = int(total.group(1)) if total else 0
    return Measure(
        rps=float(rps.group(1)) if rps else 0.0,
        p50_ms=_ms(out, "50"),
        p99_ms=_ms(out, "99"),
        non_2xx=int(non.group(1)) if non else 0,
        errors=errors.group(0) if errors else "",
        cpu_us_per_request=cpu / 1000 / requests if requests and cpu else float("nan"),
        wait_share=waited / (cpu + waited) if cpu + waited else float("nan"),
    )


def in_process_floor(model_dir: Path, batch: int, seconds: float = 2.0) -> float:
    model = joblib.load(model_dir / "model.joblib")
    X = rows(batch)
    calls = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        model.predict(X)
        calls += 1
    return calls / (time.perf_counter() - started)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Row:
    model: str
    batch: int
    label: str
    protocol: str
    measure: Measure | None
    note: str = ""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of discarded warm-up")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--models", type=int, default=5, help="how many of the five models")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    wrk_bin = ensure_wrk()
    WORK.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    pythons: dict[str, Path] = {}
    failures: dict[str, str] = {}
    for name, requirements in PEER_VENVS.items():
        python, why = ensure_venv(name, requirements)
        if python is None:
            failures[name] = why
            log(f"{name}: {why}")
        else:
            pythons[name] = python
    models = dict(list(build_models().items())[: args.models])
    results: list[Row] = []
    floors: dict[tuple[str, int], float] = {}
    notes: list[str] = []

    def targets(model_dir: Path) -> list[Target]:
        out: list[Target] = []
        out.append(ours(model_dir, free_port(), "v1"))
        out.append(ours(model_dir, free_port(), "v2"))
        out.append(ours(model_dir, free_port(), "v1", fast_path=False))
        out.append(ours(model_dir, free_port(), "v1", micro_batch=64))
        out.append(ours(model_dir, free_port(), "v2", micro_batch=64))
        if "kserve-0.21.0" in pythons:
            out.append(kserve(pythons["kserve-0.21.0"], model_dir, free_port(), tuned=False))
            out.append(kserve(pythons["kserve-0.21.0"], model_dir, free_port(), tuned=True))
        if "mlserver-1.7.1" in pythons:
            out.append(
                mlserver(
                    pythons["mlserver-1.7.1"],
                    model_dir,
                    free_port(),
                    "MLServer 1.7.1, defaults",
                    None,
                )
            )
            out.append(
                mlserver(
                    pythons["mlserver-1.7.1"],
                    model_dir,
                    free_port(),
                    "MLServer 1.7.1, parallel_workers=0",
                    0,
                )
            )
        if "mlserver-1.7.1-uvloop0.21" in pythons:
            out.append(
                mlserver(
                    pythons["mlserver-1.7.1-uvloop0.21"],
                    model_dir,
                    free_port(),
                    "MLServer 1.7.1, defaults, uvloop<0.22",
                    None,
                )
            )
        return out

    for model_name, model_dir in models.items():
        estimator = joblib.load(model_dir / "model.joblib")
        for batch in BATCHES:
            floors[(model_name, batch)] = in_process_floor(model_dir, batch)
        for target in targets(model_dir):
            log(f"{model_name}: {target.label} ({target.protocol})")
            running = Running(target)
            try:
                why = running.wait_ready()
                for batch in BATCHES:
                    if not why:
                        why = check_answer(running, batch, estimator.predict(rows(batch)))
                    if why:
                        results.append(
                            Row(model_name, batch, target.label, target.protocol, None, why)
                        )
                        continue
                    wrk(wrk_bin, running, batch, args.warmup, args.connections)
                    measure = wrk(wrk_bin, running, batch, args.duration, args.connections)
                    log(
                        f"  batch {batch}: {measure.rps:.0f} req/s, p50 {measure.p50_ms:.2f} ms, "
                        f"p99 {measure.p99_ms:.2f} ms, non-2xx {measure.non_2xx}"
                    )
                    results.append(Row(model_name, batch, target.label, target.protocol, measure))
            finally:
                running.stop()

    ceiling = Running(hello(free_port()))
    try:
        why = ceiling.wait_ready()
        ceiling_measure = None
        if not why:
            wrk(wrk_bin, ceiling, 1, args.warmup, args.connections)
            ceiling_measure = wrk(wrk_bin, ceiling, 1, args.duration, args.connections)
    finally:
        ceiling.stop()
    load_after = os.getloadavg()

    versions = {
        "modeldeploy": f"scikit-learn {sklearn.__version__}, numpy {np.__version__}, "
        f"python {platform.python_version()}",
    }
    for name, python in pythons.items():
        package = "kserve" if name.startswith("kserve") else "mlserver"
        versions[name] = (
            f"{package} {package_version(python, package)}, scikit-learn "
            f"{package_version(python, 'scikit-learn')}, uvloop "
            f"{package_version(python, 'uvloop')}"
        )
    write_results(
        args, results, floors, ceiling_measure, failures, versions, load_before, load_after, notes
    )
    log(f"wrote {args.output}")
    return 0


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _fmt(m: Measure | None) -> tuple[str, str, str, str, str]:
    if m is None:
        return "—", "—", "—", "—", "—"
    return (
        f"{m.rps:,.0f}",
        f"{m.p50_ms:.2f}",
        f"{m.p99_ms:.2f}",
        f"{m.cpu_us_per_request:,.0f}",
        f"{m.wait_share:.0%}",
    )


def write_results(
    args: argparse.Namespace,
    results: list[Row],
    floors: dict[tuple[str, int], float],
    ceiling: Measure | None,
    failures: dict[str, str],
    versions: dict[str, str],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    notes: list[str],
) -> None:
    lines = [
        "# Model server benchmark",
        "",
        f"Written by `bench/serving/run.py` on {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} "
        "UTC. "
        f"Machine: {os.cpu_count()} CPUs ({_cpu()}); server pinned to CPU {SERVER_CPU}, "
        f"`wrk -t1 -c{args.connections}` pinned to CPU {LOAD_CPU}; {args.warmup} s warm-up "
        f"(discarded), then {args.duration} s measured per row. One server process (worker) "
        "each, the peers' defaults unless the row says otherwise. Load average before/after: "
        f"{load_before[0]:.2f} / {load_after[0]:.2f} (other work shared this machine; absolute "
        "numbers move with it, the ratios much less).",
        "",
        "Every server's answer was checked against `model.predict` on the same rows before it "
        "was measured. Latencies in ms. A row without numbers says why it could not run. "
        "Server CPU per request and run-queue wait come from the server process's threads' "
        "/proc schedstat over the measured run (its child processes are not counted): CPU "
        "time per request hardly depends on the machine's load, the wait is the load, and "
        "req/s follow from both, so rows measured at different loads compare by CPU time.",
        "",
        "Versions: " + "; ".join(f"{k}: {v}" for k, v in versions.items()) + ".",
        "",
    ]
    for (model, batch), floor in floors.items():
        lines += [f"## {model}, batch {batch}", ""]
        lines += [
            "| server | protocol | req/s | p50 | p99 | server CPU µs per request | "
            "run-queue wait | note |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        rows_here = [r for r in results if r.model == model and r.batch == batch]
        for r in rows_here:
            rps, p50, p99, cpu, wait = _fmt(r.measure)
            note = r.note
            if r.measure is not None and (r.measure.non_2xx or r.measure.errors):
                note = f"invalid: {r.measure.non_2xx} non-2xx {r.measure.errors}".strip()
            lines.append(
                f"| {r.label} | {r.protocol.upper()} | {rps} | {p50} | {p99} | {cpu} | {wait} | "
                f"{note.replace('|', '/')[:300]} |"
            )
        lines.append(
            f"| in-process floor: `model.predict` calls/s, no HTTP | — | {floor:,.0f} | — | — "
            "| — | — | |"
        )
        valid = [r for r in rows_here if r.measure and not r.measure.non_2xx]
        peers = [r for r in valid if not r.label.startswith("modeldeploy")]
        for protocol in ("v1", "v2"):
            same = [r for r in peers if r.protocol == protocol]
            for ours_row in [
                r for r in valid if r.label.startswith("modeldeploy") and r.protocol == protocol
            ]:
                if not same:
                    break
                best = max(same, key=lambda r: r.measure.rps)  # type: ignore[union-attr]
                mine = ours_row.measure
                assert mine is not None and best.measure is not None
                lines += [
                    "",
                    f"{protocol.upper()}: {ours_row.label} {mine.rps / best.measure.rps:.1f}x "
                    f"the requests/s of the best peer ({best.label}), p99 "
                    f"{mine.p99_ms:.2f} ms vs {best.measure.p99_ms:.2f} ms.",
                ]
        if ceiling is not None:
            for ours_row in [r for r in valid if r.label.startswith("modeldeploy")]:
                assert ours_row.measure is not None
                lines += [
                    "",
                    f"{ours_row.protocol.upper()}: {ours_row.label} "
                    f"{ours_row.measure.rps / ceiling.rps:.0%} of the bare-ASGI ceiling "
                    f"({ceiling.rps:,.0f} req/s, same run); server CPU per request "
                    f"{ours_row.measure.cpu_us_per_request / ceiling.cpu_us_per_request:.1f}x "
                    "the ceiling's.",
                ]
        lines.append("")
    if ceiling is not None:
        rps, p50, p99, cpu, wait = _fmt(ceiling)
        lines += [
            "## Ceiling",
            "",
            "A bare ASGI app answering a constant body on uvicorn + "
            "uvloop + httptools (our stack), to the same batch-1 V1 POST as our rows: "
            f"{rps} req/s, p50 {p50} ms, p99 {p99} ms, {cpu} µs of server CPU per request, "
            f"{wait} of its runnable time waiting for the CPU.",
            "",
        ]
    if failures:
        lines += ["## Peers that could not be installed", ""]
        lines += [f"- {name}: {why}" for name, why in failures.items()]
        lines.append("")
    lines += [
        "## Notes",
        "",
        "- KServe runs `bench/serving/peers/kserve_sklearn.py`: KServe's `kserve.Model` + "
        "`ModelServer` loading the joblib file and calling `predict(np.array(instances))`, as "
        "KServe's sklearn server does (its sklearnserver package is not on PyPI). KServe speaks "
        "V1 here, MLServer only V2: compare each with our row of the same protocol.",
        "- MLServer's defaults (`parallel_workers=1`: an HTTP process plus one inference "
        "process) fail to load any model with uvloop >= 0.22, which pip installs today "
        "(MLServer#2286); the `uvloop<0.22` row is the same install with the older uvloop.",
        "- `modeldeploy` rows are the defaults: every request predicted on its own, outputs "
        "bit-identical to `model.predict` on the request's rows, by the exact fast path where "
        "the estimator has one (all five models here; docs/serving.md), which the "
        "`--no-fast-path` row turns off. `--micro-batch-rows 64` "
        "(opt-in) predicts the rows of requests that arrive together in one call, which is why "
        "it can pass the in-process floor (calls/s of one request's rows); for BLAS-backed "
        "models it can change the last bits of floating-point outputs (docs/serving.md).",
        "- The goal was 2x the best peer's requests/s at an equal or lower p99. Where scikit-"
        "learn's `predict` itself dominates (the forest: a few ms per call, see the floor), no "
        "server can be much faster per request than the floor; only batching helps there.",
        *[f"- {n}" for n in notes],
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
