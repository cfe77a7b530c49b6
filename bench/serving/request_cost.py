"""CPU instructions one batch-1 request costs the server process (not a test).

    .venv/bin/python bench/serving/request_cost.py [--requests 200] [--warmup 50] [--annotate]

Each server runs as it does in bench/serving/run.py (the same models, the same command line,
uvicorn on uvloop with httptools) but under `valgrind --tool=callgrind`, which counts the
instructions the process executes: a count does not depend on what else runs on the machine,
unlike requests per second. One client on one keep-alive connection sends `--warmup` requests,
then `--requests` more, then one last one; the server counts only what it executes from the
start of the first counted request's ASGI call to the start of the last one's (callgrind's
client requests, from a three-line C helper compiled here), so the count is `--requests` whole
request cycles: the event loop's wake-up, reading, parsing, the application, writing. Imports,
loading and warm-up are not counted. Every answer is checked against `model.predict` on the
same row. Results go to bench/results/request_cost.md; `--annotate` also writes callgrind's
per-function profile of each server next to its output under ~/.cache/modeldeploy/bench-work.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from run import HERE, ROOT, WORK, body, build_models, free_port, rows

RESULTS = ROOT / "bench" / "results" / "request_cost.md"
COUNTING = WORK / "callgrind"
HELPER_SOURCE = """
#include <valgrind/callgrind.h>
void counting_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }
void counting_stop(void) { CALLGRIND_DUMP_STATS_AT("requests"); CALLGRIND_STOP_INSTRUMENTATION; }
"""
HELLO = "bare ASGI app on our HTTP stack (bench/serving/hello.py)"


@dataclass(frozen=True)
class Case:
    label: str
    model: str | None  # a model of run.py's build_models; None: the bare ASGI app
    protocol: str  # v1 | v2
    flags: tuple[str, ...] = ()


CASES = (
    Case(HELLO, None, "v1"),
    Case("modeldeploy, LogisticRegression", "LogisticRegression (iris)", "v1"),
    Case("modeldeploy, LogisticRegression", "LogisticRegression (iris)", "v2"),
    Case(
        "modeldeploy --no-fast-path, LogisticRegression",
        "LogisticRegression (iris)",
        "v1",
        ("--no-fast-path",),
    ),
    Case(
        "modeldeploy, Pipeline (StandardScaler + LogisticRegression)",
        "Pipeline: StandardScaler + LogisticRegression (iris)",
        "v1",
    ),
    Case("modeldeploy, RandomForest (100 trees)", "RandomForest, 100 trees (iris)", "v1"),
    Case(
        "modeldeploy, HistGradientBoosting (100 iterations)",
        "HistGradientBoosting, 100 iterations (iris)",
        "v1",
    ),
    Case(
        "modeldeploy, ColumnTransformer Pipeline",
        "Pipeline: ColumnTransformer(StandardScaler on 3 columns, OneHotEncoder on 1) + "
        "LogisticRegression (iris)",
        "v1",
    ),
)


# -- inside the server process (run under valgrind) --------------------------------------------


class RequestCounter:
    """Starts callgrind's counting at request `first` and stops it (and dumps) at `last`."""

    def __init__(self, helper: Path, first: int, last: int) -> None:
        self.library = ctypes.CDLL(str(helper))
        self.first = first
        self.last = last
        self.seen = 0

    def tick(self) -> None:
        self.seen += 1
        if self.seen == self.first:
            self.library.counting_start()
        elif self.seen == self.last:
            self.library.counting_stop()


def counted(call: Callable[..., Any], counter: RequestCounter) -> Callable[..., Any]:
    """`call` (an ASGI callable) that ticks `counter` on each POST; a plain function returning
    `call`'s coroutine, so that it adds no coroutine of its own to the count."""

    def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "http" and scope["method"] == "POST":
            counter.tick()
        return call(scope, receive, send)

    return wrapper


def serve(args: argparse.Namespace, server_args: list[str]) -> int:
    counter = RequestCounter(args.helper, args.warmup + 1, args.warmup + args.requests + 1)
    if args.hello:
        sys.path.insert(0, str(HERE))
        import hello
        import uvicorn

        uvicorn.Server(hello.config(args.port, counted(hello.app, counter))).run()
        return 0
    from modeldeploy_serving import server
    from modeldeploy_serving.app import ServingApp
    from modeldeploy_serving.settings import ServerSettings

    build_app = server.build_app

    def build_counted_app(settings: ServerSettings) -> ServingApp:
        app = build_app(settings)
        app.handle = counted(app.handle, counter)  # type: ignore[method-assign]
        return app

    server.build_app = build_counted_app
    return server.main(server_args)


# -- the driver ----------------------------------------------------------------------------------


def compile_helper() -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (with its headers) and a C compiler")
    COUNTING.mkdir(parents=True, exist_ok=True)
    source, helper = COUNTING / "counting.c", COUNTING / "counting.so"
    source.write_text(HELPER_SOURCE)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", str(source), "-o", str(helper)], check=True)
    return helper


def server_command(case: Case, model_dir: Path | None, port: int) -> list[str]:
    if model_dir is None:
        return ["--hello"]
    return [
        "--",
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
        *case.flags,
    ]


def http_request(method: str, path: str, payload: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
    if method == "POST":
        head += f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
    return head.encode() + b"\r\n" + payload


def exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; its status and body."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    size = int(length.group(1)) if length else 0
    while len(rest) < size:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        rest += chunk
    return int(head.split(b" ", 2)[1]), rest


def wait_ready(port: int, path: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                if exchange(sock, http_request("GET", path))[0] == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server was not ready after {timeout:.0f} s")


def predictions(case: Case, reply: bytes) -> list[Any]:
    doc = json.loads(reply)
    found: list[Any] = doc["predictions"] if case.protocol == "v1" else doc["outputs"][0]["data"]
    return found


def measure(
    case: Case, model_dir: Path | None, helper: Path, args: argparse.Namespace, index: int
) -> int:
    """Instructions per request of `case`."""
    port = free_port()
    # Named after the results file, so that runs written to different files never mix.
    stem = f"{args.output.stem}-case{index}"
    out = COUNTING / f"{stem}.out"
    for stale in COUNTING.glob(f"{stem}.out*"):
        stale.unlink()
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        str(ROOT / ".venv" / "bin" / "python"),
        str(Path(__file__).resolve()),
        "--serve",
        "--helper",
        str(helper),
        "--port",
        str(port),
        "--warmup",
        str(args.warmup),
        "--requests",
        str(args.requests),
        *server_command(case, model_dir, port),
    ]
    log = (COUNTING / f"{stem}.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "serving"), "PYTHONHASHSEED": "0"}
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        ready = "/" if model_dir is None else "/v2/health/ready"
        wait_ready(port, ready, proc, timeout=args.ready_timeout)
        path = "/v1/models/m:predict" if case.protocol == "v1" else "/v2/models/m/infer"
        if model_dir is None:
            path = "/"
        request = http_request("POST", path, body(case.protocol, 1).encode())
        expected = None
        if model_dir is not None:
            expected = joblib.load(model_dir / "model.joblib").predict(rows(1)).tolist()
        with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
            for _ in range(args.warmup + args.requests + 1):
                status, reply = exchange(sock, request)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {reply[:200]!r}")
                if expected is not None and predictions(case, reply) != expected:
                    raise RuntimeError(f"wrong predictions: {reply[:200]!r}, expected {expected}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(120)
        log.close()
    dump = Path(f"{out}.1")
    summary = re.search(r"^summary:\s+(\d+)", dump.read_text(), re.M)
    if summary is None:
        raise RuntimeError(f"no summary in {dump}")
    if args.annotate:
        profile = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", str(dump)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (COUNTING / f"{stem}.annotated.txt").write_text(profile)
    return round(int(summary.group(1)) / args.requests)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="requests counted per server")
    parser.add_argument("--warmup", type=int, default=50, help="requests before counting")
    parser.add_argument("--cases", default="", help="comma-separated case numbers (default all)")
    parser.add_argument("--annotate", action="store_true", help="keep per-function profiles")
    # Loading under valgrind takes a minute on an idle machine, far longer on a loaded one.
    parser.add_argument("--ready-timeout", type=float, default=1800.0, help="seconds")
    parser.add_argument("--output", type=Path, default=RESULTS)
    # The server side, started by the driver under valgrind.
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--hello", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--helper", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    argv = sys.argv[1:]
    server_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if args.serve:
        return serve(args, server_args)

    helper = compile_helper()
    models = build_models()
    chosen = [int(i) for i in args.cases.split(",")] if args.cases else range(len(CASES))
    table = [
        "| # | server | protocol | instructions per request |",
        "|---:|---|---|---:|",
    ]
    for i in chosen:
        case = CASES[i]
        model_dir = models[case.model] if case.model is not None else None
        print(f"[request_cost] {i}: {case.label} ({case.protocol})", flush=True)
        cost = measure(case, model_dir, helper, args, i)
        print(f"[request_cost]   {cost:,} instructions per request", flush=True)
        table.append(f"| {i} | {case.label} | {case.protocol.upper()} | {cost:,} |")
    valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout
    command = "bench/serving/request_cost.py" + "".join(
        f" {flag} {value}"
        for flag, value in (
            ("--requests", args.requests),
            ("--warmup", args.warmup),
            ("--cases", args.cases),
        )
        if value != ""
    )
    lines = [
        "# Instructions per request",
        "",
        f"Written by `.venv/bin/python {command}` on "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC: batch-1 requests (one iris row) "
        f"on one keep-alive connection, {args.warmup} warm-up requests, then "
        f"{args.requests} counted, in the server process under "
        f"`valgrind --tool=callgrind` ({valgrind.strip()}); python "
        f"{platform.python_version()}, scikit-learn {sklearn.__version__}, numpy "
        f"{np.__version__}. The count does not depend on the machine's load. It covers whole "
        "request cycles (event loop, HTTP parsing, the application, the response), not the "
        "kernel's side of the socket; every answer was checked against `model.predict`.",
        "",
        *table,
        "",
    ]
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
