"""What one batch-1 request costs the server process, in load-independent counts (not a test).

    .venv/bin/python bench/serving/request_cost.py [--requests 200] [--warmup 50] [--annotate]
        [--cases 0,1] [--measure instructions,syscalls] [--connections 1] [--cache-sim]

Each server runs as it does in bench/serving/run.py (the same models, the same command line,
run.py `serve_args`; uvicorn on uvloop with httptools), started by counted_server.py, which
marks a window of `--requests` whole request cycles: from the start of the first counted
request's ASGI call to the start of the one after the last. A client sends `--warmup` requests,
then the counted ones, over `--connections` keep-alive connections (each sending its next
request when its answer is in, as wrk does, so that as many are in flight as under its load).
Every answer is checked against `model.predict` on the same row. Two measures, none of which
depends on what else runs on the machine, unlike requests per second:

- instructions: the server under `valgrind --tool=callgrind`, counting only in the window
  (callgrind's client requests, from a three-line C helper compiled here): the event loop's
  wake-ups, reading, parsing, the application, writing. `--cache-sim` adds callgrind's cycle
  estimate from simulated caches (how much of the cost is memory rather than instructions).
- syscalls: the server without valgrind; over the window, the garbage collector's collections
  (a `gc.callbacks` hook), every thread's voluntary context switches and the page faults
  (/proc); over as many further requests, the syscalls of all its threads (`strace -c -f`,
  attached for them only, since its stops count as context switches); then the syscalls of
  `--idle-seconds` with no requests (timers and periodic work).

Imports, loading and warm-up are not counted. Results go to bench/results/request_cost.md;
`--annotate` also writes callgrind's per-function profile of each server next to its output
under ~/.cache/modeldeploy/bench-work/callgrind.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from run import HERE, ROOT, WORK, body, build_models, free_port, rows, serve_args

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
    fast_path: bool = True
    method: str = "POST"  # GET: the bare app's request as run.py measures its ceiling


CASES = (
    Case(HELLO, None, "v1"),
    Case("modeldeploy, LogisticRegression", "LogisticRegression (iris)", "v1"),
    Case("modeldeploy, LogisticRegression", "LogisticRegression (iris)", "v2"),
    Case(
        "modeldeploy --no-fast-path, LogisticRegression",
        "LogisticRegression (iris)",
        "v1",
        fast_path=False,
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
    # run.py measured its ceiling so until it sent the bare app our V1 request.
    Case(HELLO + ", GET without a body", None, "v1", method="GET"),
)


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
    """What counted_server.py serves: `--hello`, or `--` and the flags run.py's benchmark
    starts our server with (run.py `serve_args`, shared so the two cannot drift)."""
    if model_dir is None:
        return ["--hello"]
    return ["--", *serve_args(model_dir, port, fast_path=case.fast_path)]


def http_request(method: str, path: str, payload: bytes = b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
    if method == "POST":
        head += f"content-type: application/json\r\ncontent-length: {len(payload)}\r\n"
    return head.encode() + b"\r\n" + payload


def exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; its status and body."""
    sock.sendall(request)
    return read_response(sock)


def read_response(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the next response on `sock`."""
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


class Client:
    """`connections` keep-alive connections to a case's server, sending its batch-1 request and
    checking every answer against `model.predict` on the same row. Each connection sends its
    next request as soon as its answer is in, as wrk does, so that with several connections
    that many requests are in flight (and no connection idles past uvicorn's keep-alive
    timeout while a slow server, under valgrind, answers the others)."""

    def __init__(self, case: Case, model_dir: Path | None, port: int, connections: int) -> None:
        self.case = case
        path = "/v1/models/m:predict" if case.protocol == "v1" else "/v2/models/m/infer"
        payload = body(case.protocol, 1).encode() if case.method == "POST" else b""
        self.request = http_request(case.method, "/" if model_dir is None else path, payload)
        self.expected = None
        if model_dir is not None:
            self.expected = joblib.load(model_dir / "model.joblib").predict(rows(1)).tolist()
        self.socks = [
            socket.create_connection(("127.0.0.1", port), timeout=600) for _ in range(connections)
        ]

    def send(self, count: int) -> None:
        """`count` requests, and wait for their answers."""
        with selectors.DefaultSelector() as selector:
            for sock in self.socks[:count]:
                sock.sendall(self.request)
                selector.register(sock, selectors.EVENT_READ)
            unsent = count - len(selector.get_map())
            while selector.get_map():
                for key, _ in selector.select(timeout=600):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    self._check(*read_response(sock))
                    if unsent:
                        sock.sendall(self.request)
                        unsent -= 1
                    else:
                        selector.unregister(sock)

    def _check(self, status: int, reply: bytes) -> None:
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {reply[:200]!r}")
        if self.expected is not None and predictions(self.case, reply) != self.expected:
            raise RuntimeError(f"wrong predictions: {reply[:200]!r}, expected {self.expected}")

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def start_server(
    args: argparse.Namespace,
    prefix: list[str],
    case: Case,
    model_dir: Path | None,
    port: int,
    probe: list[str],
    log: Path,
) -> subprocess.Popen[bytes]:
    """This script in `--serve` mode behind `prefix` (valgrind, or nothing), ready."""
    command = [
        *prefix,
        str(ROOT / ".venv" / "bin" / "python"),
        str(HERE / "counted_server.py"),
        *probe,
        "--method",
        case.method,
        "--port",
        str(port),
        "--warmup",
        str(args.warmup),
        "--requests",
        str(args.requests),
        *server_command(case, model_dir, port),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "serving"), "PYTHONHASHSEED": "0"}
    out = log.open("wb")
    proc = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)
    out.close()
    try:
        wait_ready(port, "/" if model_dir is None else "/v2/health/ready", proc, args.ready_timeout)
    except BaseException:
        stop_server(proc)
        raise
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(120)


@dataclass(frozen=True)
class Cost:
    instructions: int  # per request
    # callgrind's estimate of cycles per request from its simulated caches (`--cache-sim`):
    # Ir + 10 x L1 misses + 100 x last-level misses; None without the simulation.
    cycles: int | None


def measure(
    case: Case, model_dir: Path | None, helper: Path, args: argparse.Namespace, index: int
) -> Cost:
    """Instructions (and with `--cache-sim` estimated cycles) per request of `case`."""
    port = free_port()
    # Named after the results file, so that runs written to different files never mix.
    stem = f"{args.output.stem}-case{index}"
    out = COUNTING / f"{stem}.out"
    for stale in COUNTING.glob(f"{stem}.out*"):
        stale.unlink()
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    if args.cache_sim:
        valgrind.append("--cache-sim=yes")
    proc = start_server(
        args, valgrind, case, model_dir, port, ["--helper", str(helper)], COUNTING / f"{stem}.log"
    )
    try:
        client = Client(case, model_dir, port, args.connections)
        client.send(args.warmup + args.requests + 1)
        client.close()
    finally:
        stop_server(proc)
    dump = Path(f"{out}.1")
    text = dump.read_text()
    names = re.search(r"^events:\s+(.+)$", text, re.M)
    summary = re.search(r"^summary:\s+(.+)$", text, re.M)
    if names is None or summary is None:
        raise RuntimeError(f"no events or summary in {dump}")
    events = dict(zip(names.group(1).split(), map(int, summary.group(1).split()), strict=False))
    if args.annotate:
        profile = subprocess.run(
            ["callgrind_annotate", "--inclusive=yes", str(dump)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (COUNTING / f"{stem}.annotated.txt").write_text(profile)
    cycles = None
    if args.cache_sim:
        l1 = events["I1mr"] + events["D1mr"] + events["D1mw"]
        last_level = events["ILmr"] + events["DLmr"] + events["DLmw"]
        cycles = round((events["Ir"] + 10 * l1 + 100 * last_level) / args.requests)
    return Cost(round(events["Ir"] / args.requests), cycles)


# -- syscalls, threads and the garbage collector ---------------------------------------------------


@dataclass(frozen=True)
class ThreadStat:
    name: str
    voluntary: int  # context switches: the thread slept (waited on a socket, a lock, a timer)
    involuntary: int
    cpu_ticks: int  # user + system, in clock ticks


def thread_stats(pid: int) -> dict[int, ThreadStat]:
    """Every thread of process `pid`, by thread id."""
    found: dict[int, ThreadStat] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
            stat = (task / "stat").read_text()
        except OSError:  # the thread has just ended
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        after_name = stat[stat.rindex(")") + 2 :].split()
        found[int(task.name)] = ThreadStat(
            fields["Name"].strip(),
            int(fields["voluntary_ctxt_switches"]),
            int(fields["nonvoluntary_ctxt_switches"]),
            int(after_name[11]) + int(after_name[12]),  # utime, stime: fields 14 and 15
        )
    return found


def minor_faults(pid: int) -> int:
    """Minor page faults of process `pid` so far (/proc/PID/stat field 10)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[7])


class Strace:
    """`strace -c -f` attached to every thread of a running process, counting its syscalls until
    `stop`."""

    def __init__(self, pid: int, out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            ["strace", "-c", "-f", "-p", str(pid), "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Counting starts when every thread is attached.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            tracers = [
                re.search(r"^TracerPid:\s+(\d+)", (task / "status").read_text(), re.M)
                for task in Path(f"/proc/{pid}/task").iterdir()
            ]
            if all(t is not None and int(t.group(1)) == self.proc.pid for t in tracers):
                return
            time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError(f"strace did not attach to every thread of {pid}")

    def stop(self) -> dict[str, int]:
        """Calls per syscall while attached."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)
        calls: dict[str, int] = {}
        for line in self.out.read_text().splitlines():
            # % time, seconds, usecs/call, calls, [errors,] syscall
            match = re.match(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$", line)
            if match and match.group(2) != "total":
                calls[match.group(2)] = int(match.group(1))
        return calls


@dataclass(frozen=True)
class Behaviour:
    """What the server process does for `requests` requests, besides executing instructions."""

    requests: int
    syscalls: dict[str, int]  # calls per syscall, over `requests` requests under strace
    idle_seconds: float
    idle_syscalls: dict[str, int]  # over `idle_seconds` with no requests
    # Over `requests` other requests, not traced (strace's stops are context switches too):
    threads: dict[int, tuple[ThreadStat, ThreadStat]]  # thread id: before, after
    main_thread: int
    faults: int  # minor page faults
    gc: dict[str, Any]  # GcProbe's counts, over the same untraced requests

    def per_request(self, calls: int) -> float:
        return calls / self.requests

    def other_threads_wakeups(self) -> int:
        return sum(
            after.voluntary - before.voluntary
            for tid, (before, after) in self.threads.items()
            if tid != self.main_thread
        )

    def main_thread_sleeps(self) -> int:
        before, after = self.threads[self.main_thread]
        return after.voluntary - before.voluntary

    def thread_names(self) -> str:
        names: dict[str, int] = {}
        for before, _ in self.threads.values():
            names[before.name] = names.get(before.name, 0) + 1
        return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in sorted(names.items()))


def behave(case: Case, model_dir: Path | None, args: argparse.Namespace, index: int) -> Behaviour:
    """Garbage collections (gc.callbacks), thread wake-ups (/proc) and page faults over
    `--requests` requests of `case`; syscalls (strace) over as many more; then the syscalls of
    `--idle-seconds` with none."""
    port = free_port()
    stem = f"{args.output.stem}-case{index}"
    probe = COUNTING / f"{stem}.gc.json"
    probe.unlink(missing_ok=True)
    proc = start_server(
        args, [], case, model_dir, port, ["--probe", str(probe)], COUNTING / f"{stem}.log"
    )
    try:
        client = Client(case, model_dir, port, args.connections)
        client.send(args.warmup)
        before, faults = thread_stats(proc.pid), minor_faults(proc.pid)
        client.send(args.requests)  # the probe's window: these requests
        after, faults = thread_stats(proc.pid), minor_faults(proc.pid) - faults
        strace = Strace(proc.pid, COUNTING / f"{stem}.strace")
        client.send(args.requests)  # the first one's tick closes the probe's window
        syscalls = strace.stop()
        idle = Strace(proc.pid, COUNTING / f"{stem}.idle.strace")
        time.sleep(args.idle_seconds)
        idle_syscalls = idle.stop()
        client.close()
        deadline = time.monotonic() + 60
        while not probe.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop_server(proc)
    return Behaviour(
        requests=args.requests,
        syscalls=syscalls,
        idle_seconds=args.idle_seconds,
        idle_syscalls=idle_syscalls,
        threads={tid: (before[tid], after[tid]) for tid in before.keys() & after.keys()},
        main_thread=proc.pid,
        faults=faults,
        gc=json.loads(probe.read_text()),
    )


def describe_behaviour(b: Behaviour) -> str:
    """One line of the syscalls table's text: the syscalls per request, largest first."""
    parts = [
        f"{name} {b.per_request(calls):.2f}"
        for name, calls in sorted(b.syscalls.items(), key=lambda item: -item[1])
    ]
    return ", ".join(parts) or "none"


def behaviour_row(i: int, case: Case, b: Behaviour) -> str:
    sleeps = b.main_thread_sleeps()
    collections = "/".join(f"{1000 * n / b.requests:.1f}" for n in b.gc["collections"])
    idle = sum(b.idle_syscalls.values()) / b.idle_seconds
    return (
        f"| {i} | {case.label} | {case.protocol.upper()} | "
        f"{b.per_request(sum(b.syscalls.values())):.2f} | {b.per_request(sleeps):.2f} | "
        f"{1000 * b.other_threads_wakeups() / b.requests:.1f} | {len(b.threads)} | "
        f"{b.per_request(b.faults):.2f} | "
        f"{collections} | {1e6 * b.gc['gc_cpu_seconds'] / b.requests:.1f} | {idle:.1f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="requests counted per server")
    parser.add_argument("--warmup", type=int, default=50, help="requests before counting")
    parser.add_argument("--cases", default="", help="comma-separated case numbers (default all)")
    parser.add_argument(
        "--measure",
        default="instructions,syscalls",
        help="instructions (callgrind), syscalls (strace, /proc, gc.callbacks), or both",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=2.0, help="syscalls counted with no requests"
    )
    parser.add_argument(
        "--connections", type=int, default=1, help="requests in flight, one per connection"
    )
    parser.add_argument(
        "--cache-sim",
        action="store_true",
        help="also simulate the caches: callgrind's estimate of cycles per request",
    )
    parser.add_argument("--annotate", action="store_true", help="keep per-function profiles")
    # Loading under valgrind takes a minute on an idle machine, far longer on a loaded one.
    parser.add_argument("--ready-timeout", type=float, default=1800.0, help="seconds")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    measures = set(args.measure.split(","))
    if not measures <= {"instructions", "syscalls"}:
        parser.error(f"--measure takes instructions and/or syscalls, got {args.measure!r}")
    if "syscalls" in measures and shutil.which("strace") is None:
        raise SystemExit("--measure syscalls needs strace")
    helper = compile_helper() if "instructions" in measures else None
    COUNTING.mkdir(parents=True, exist_ok=True)
    models = build_models()
    chosen = [int(i) for i in args.cases.split(",")] if args.cases else range(len(CASES))
    instructions = [
        "| # | server | protocol | instructions per request |"
        + (" estimated cycles per request (simulated caches) |" if args.cache_sim else ""),
        "|---:|---|---|---:|" + ("---:|" if args.cache_sim else ""),
    ]
    behaviours = [
        "| # | server | protocol | syscalls per request | main thread sleeps per request | "
        "other threads' wake-ups per 1000 requests | threads | minor page faults per request | "
        "GC collections per 1000 "
        "requests (gen 0/1/2) | GC CPU µs per request | idle syscalls per second |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    details: list[str] = []
    for i in chosen:
        case = CASES[i]
        model_dir = models[case.model] if case.model is not None else None
        print(f"[request_cost] {i}: {case.label} ({case.protocol})", flush=True)
        if helper is not None:
            cost = measure(case, model_dir, helper, args, i)
            cycles = f" | {cost.cycles:,}" if cost.cycles is not None else ""
            print(f"[request_cost]   {cost.instructions:,} instructions{cycles}", flush=True)
            instructions.append(
                f"| {i} | {case.label} | {case.protocol.upper()} | {cost.instructions:,}{cycles} |"
            )
        if "syscalls" in measures:
            b = behave(case, model_dir, args, i)
            row = behaviour_row(i, case, b)
            print(f"[request_cost]   {row}", flush=True)
            print(f"[request_cost]   per request: {describe_behaviour(b)}", flush=True)
            behaviours.append(row)
            details.append(
                f"- {i} ({case.protocol.upper()}): {describe_behaviour(b)}; threads: "
                f"{b.thread_names()}"
            )
    command = "bench/serving/request_cost.py" + "".join(
        f" {flag} {value}"
        for flag, value in (
            ("--requests", args.requests),
            ("--warmup", args.warmup),
            ("--cases", args.cases),
            ("--measure", args.measure),
            ("--connections", args.connections if args.connections != 1 else ""),
        )
        if value != ""
    )
    if args.cache_sim:
        command += " --cache-sim"
    lines = [
        "# What one request costs the server",
        "",
        f"Written by `.venv/bin/python {command}` on "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC: batch-1 requests (one iris row) "
        + (
            "on one keep-alive connection"
            if args.connections == 1
            else f"on {args.connections} keep-alive connections, each sending its next request "
            "when its answer is in"
        )
        + f", {args.warmup} warm-up requests, then "
        f"{args.requests} counted; python {platform.python_version()}, scikit-learn "
        f"{sklearn.__version__}, numpy {np.__version__}. Every answer was checked against "
        "`model.predict`. None of these counts depends on the machine's load.",
        "",
    ]
    if helper is not None:
        valgrind = subprocess.run(["valgrind", "--version"], capture_output=True, text=True)
        lines += [
            "## Instructions per request",
            "",
            f"In the server process under `valgrind --tool=callgrind` ({valgrind.stdout.strip()}),"
            " from the start of the first counted request's ASGI call to the start of the one "
            "after the last: whole request cycles (event loop, HTTP parsing, the application, "
            "the response), not the kernel's side of the socket.",
            "",
            *instructions,
            "",
        ]
    if "syscalls" in measures:
        strace = subprocess.run(["strace", "-V"], capture_output=True, text=True).stdout
        lines += [
            "## Syscalls, threads and garbage collection per request",
            "",
            "The server runs without valgrind; `strace -c -f` "
            f"({strace.splitlines()[0] if strace else 'strace'}) is attached to all its threads "
            "for the counted requests only. A main-thread sleep is a voluntary context switch "
            "(it waited in epoll for the next request); other threads' wake-ups are their "
            "voluntary context switches in the same window (/proc/PID/task). Garbage "
            "collections are counted by a `gc.callbacks` hook over the counted requests, with "
            "the CPU time they took (that time, unlike the counts, depends on caches). Idle: "
            f"syscalls over {args.idle_seconds:g} s with the connection open and no requests.",
            "",
            *behaviours,
            "",
            "Syscalls per request, by name:",
            "",
            *details,
            "",
        ]
    args.output.write_text("\n".join(lines))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
