"""The server side of request_cost.py (not a test): a benchmarked server, counted.

    counted_server.py (--helper LIB | --probe FILE) --port P --warmup W --requests N
        (--hello | -- FLAGS OF modeldeploy serve)

Runs the bare ASGI app (hello.py) or `modeldeploy serve` exactly as run.py does, with its ASGI
callable wrapped to count the requests of one method (POST unless `--method`): request W + 1
opens the counted window and request W + N + 1 closes it, so the window holds N whole request
cycles. With `--helper` (under valgrind) the window is callgrind's instrumentation; with
`--probe` it is the garbage collector's activity, written to FILE as JSON at its end.
Apart in its own module, importing
nothing the served app does not, so that the bare app's process holds what run.py's does.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


class RequestCounter:
    """Calls `start` at request `first` and `stop` at request `last`: the counted window."""

    def __init__(
        self, first: int, last: int, start: Callable[[], Any], stop: Callable[[], Any]
    ) -> None:
        self.first = first
        self.last = last
        self.start = start
        self.stop = stop
        self.seen = 0

    def tick(self) -> None:
        self.seen += 1
        if self.seen == self.first:
            self.start()
        elif self.seen == self.last:
            self.stop()


class GcProbe:
    """What the garbage collector does in the counted window: collections per generation, the
    objects they freed, and the CPU time they took (this thread's, so other processes' load
    does not count; the time still depends on caches, the counts do not). `stop` writes them,
    with the interpreter's allocated blocks before and after, to `path` as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.collections = [0, 0, 0]
        self.collected = 0
        self.seconds = 0.0
        self._began = 0.0
        self._blocks = 0

    def start(self) -> None:
        self._blocks = sys.getallocatedblocks()
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.thread_time()
            return
        self.seconds += time.thread_time() - self._began
        self.collections[info["generation"]] += 1
        self.collected += info["collected"]

    def stop(self) -> None:
        gc.callbacks.remove(self._callback)
        self.path.write_text(
            json.dumps(
                {
                    "collections": self.collections,
                    "collected": self.collected,
                    "gc_cpu_seconds": self.seconds,
                    "blocks_before": self._blocks,
                    "blocks_after": sys.getallocatedblocks(),
                    "gc_thresholds": list(gc.get_threshold()),
                    "gc_frozen": gc.get_freeze_count(),
                }
            )
        )


def counted(call: Callable[..., Any], counter: RequestCounter, method: str) -> Callable[..., Any]:
    """`call` (an ASGI callable) that ticks `counter` on each request of `method`; a plain
    function returning `call`'s coroutine, so that it adds no coroutine of its own to the
    count."""

    def wrapper(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "http" and scope["method"] == method:
            counter.tick()
        return call(scope, receive, send)

    return wrapper


def serve(args: argparse.Namespace, server_args: list[str]) -> int:
    first, last = args.warmup + 1, args.warmup + args.requests + 1
    if args.helper is not None:  # under callgrind
        library = ctypes.CDLL(str(args.helper))
        counter = RequestCounter(first, last, library.counting_start, library.counting_stop)
    else:
        probe = GcProbe(args.probe)
        counter = RequestCounter(first, last, probe.start, probe.stop)
    if args.hello:
        sys.path.insert(0, str(HERE))
        import hello
        import uvicorn

        uvicorn.Server(hello.config(args.port, counted(hello.app, counter, args.method))).run()
        return 0
    from modeldeploy_serving import server
    from modeldeploy_serving.app import ServingApp
    from modeldeploy_serving.settings import ServerSettings

    build_app = server.build_app

    def build_counted_app(settings: ServerSettings) -> ServingApp:
        app = build_app(settings)
        app.handle = counted(app.handle, counter, args.method)  # type: ignore[method-assign]
        return app

    server.build_app = build_counted_app
    return server.main(server_args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hello", action="store_true")
    parser.add_argument("--helper", type=Path, help="the callgrind helper library")
    parser.add_argument("--probe", type=Path, help="where the garbage collector's counts go")
    parser.add_argument("--method", default="POST", help="the method of the counted requests")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--warmup", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    argv = sys.argv[1:]
    server_args = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = parser.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    if (args.helper is None) == (args.probe is None):
        parser.error("give one of --helper and --probe")
    return serve(args, server_args)


if __name__ == "__main__":
    raise SystemExit(main())
