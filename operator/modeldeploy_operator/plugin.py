"""`kubectl modeldeploy status|promote|abort|pause|resume NAME [-n NS]`: the kubectl plugin.

It runs `kubectl` itself, so it uses exactly the user's kubeconfig, context, credentials and
namespace defaulting, and every write shows up in audit logs as the user's.

GitOps-safe requests. `promote`, `abort`, `pause` and `resume` never touch `spec`: they
merge-patch the request annotations (`rollout.requests`, the contract the operator reads), with
field manager `kubectl-modeldeploy`. Annotations no manifest sets are not drift to Argo CD or
Flux, and later requests simply overwrite them. `spec.rollout.paused` stays the declarative
pause; `resume` cannot lift it (it belongs to the manifests) and says so.

`status` prints phase, versions, weight, step, conditions and every check of the last analysis
with its value and threshold.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TextIO

from modeldeploy_serving.contract import (
    REQUEST_ANNOTATION,
    REQUEST_CANARY_ANNOTATION,
    REQUEST_ID_ANNOTATION,
)

from modeldeploy_operator import api
from modeldeploy_operator.api import ModelDeploymentStatus
from modeldeploy_operator.rollout.analysis.checks import (
    COMPARE_CLIENT_ERRORS_WITH_STABLE,
    COMPARE_WITH_STABLE,
    DRIFT,
    LATENCY_P99_MS,
    SUCCESS_RATE,
)
from modeldeploy_operator.rollout.requests import (
    REQUEST_VERBS,
    Request,
    paused_by_request,
    request_patch,
)

FIELD_MANAGER: Final = "kubectl-modeldeploy"
RESOURCE: Final = f"{api.PLURAL}.{api.GROUP}"
VERBS: Final = ("status", *REQUEST_VERBS)
POLL_SECONDS: Final = 1.0

# How each check's value reads, by AnalysisCheckResult.name.
CHECK_UNITS: Final = {
    SUCCESS_RATE: "%",
    LATENCY_P99_MS: " ms",
    COMPARE_WITH_STABLE: " pp",
    COMPARE_CLIENT_ERRORS_WITH_STABLE: " pp",
    DRIFT: " PSI",
}


@dataclass(frozen=True)
class Completed:
    """What a kubectl run returned."""

    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], Completed]


def run_kubectl(args: Sequence[str]) -> Completed:
    proc = subprocess.run(["kubectl", *args], capture_output=True, text=True, check=False)
    return Completed(proc.returncode, proc.stdout, proc.stderr)


class PluginError(Exception):
    """A failure to report to the user as is (exit status 1)."""


@dataclass
class Plugin:
    runner: Runner
    out: TextIO
    err: TextIO
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    new_id: Callable[[], str] = lambda: str(uuid.uuid4())

    def kubectl(self, args: argparse.Namespace, *command: str) -> str:
        common: list[str] = []
        if args.kubeconfig:
            common.append(f"--kubeconfig={args.kubeconfig}")
        if args.context:
            common.append(f"--context={args.context}")
        if args.namespace:
            common.append(f"--namespace={args.namespace}")
        try:
            done = self.runner([*common, *command])
        except FileNotFoundError as error:
            raise PluginError("kubectl not found on PATH: the plugin runs kubectl") from error
        if done.returncode != 0:
            raise PluginError(done.stderr.strip() or f"kubectl exited with {done.returncode}")
        return done.stdout

    def get(self, args: argparse.Namespace) -> dict[str, Any]:
        text = self.kubectl(args, "get", RESOURCE, args.name, "--output=json")
        try:
            body = json.loads(text)
        except ValueError as error:
            raise PluginError(
                f"kubectl returned something other than JSON: {text[:200]}"
            ) from error
        if not isinstance(body, dict):
            raise PluginError("kubectl returned something other than an object")
        return body

    # -- status ------------------------------------------------------------------------------

    def status(self, args: argparse.Namespace) -> int:
        self.out.write(describe(self.get(args)))
        return 0

    # -- requests ----------------------------------------------------------------------------

    def request(self, args: argparse.Namespace) -> int:
        verb: Request = args.verb
        body = self.get(args)
        spec = body.get("spec") or {}
        status = _status(body)
        where = _where(body)
        canary = status.canary_version
        if canary is None:
            raise PluginError(
                f"{where} has no rollout in progress (phase {status.phase or 'unknown'}, stable "
                f"{status.stable_version or 'none'}): nothing to {verb}"
            )
        spec_paused = bool((spec.get("rollout") or {}).get("paused"))
        if verb == "resume" and spec_paused:
            self.err.write(
                f"note: spec.rollout.paused is true for {where}; resume lifts only a pause made "
                "with `kubectl modeldeploy pause` — set spec.rollout.paused to false where the "
                "manifest lives\n"
            )
        if verb == "pause" and spec_paused:
            self.err.write(f"note: {where} is already paused by spec.rollout.paused\n")
        request_id = self.new_id()
        patch = request_patch(verb, request_id, canary)
        self.kubectl(
            args,
            "patch",
            RESOURCE,
            args.name,
            "--type=merge",
            f"--field-manager={FIELD_MANAGER}",
            f"--patch={json.dumps(patch, separators=(',', ':'))}",
        )
        self.out.write(f"{verb} requested for {where} (canary {canary}, request {request_id})\n")
        if not args.wait:
            hint = f"kubectl modeldeploy status {args.name}"
            if args.namespace:
                hint += f" -n {args.namespace}"
            self.out.write(f"the operator acts on its next pass; follow it with: {hint}\n")
            return 0
        return self.wait(args, request_id)

    def wait(self, args: argparse.Namespace, request_id: str) -> int:
        deadline = self.clock() + args.timeout
        while True:
            body = self.get(args)
            status = _status(body)
            if status.last_request_id == request_id:
                self.out.write(f"done: {_headline(status)}\n")
                return 0
            if self.clock() >= deadline:
                raise PluginError(
                    f"the operator has not acted on request {request_id} within "
                    f"{args.timeout:g}s (status.lastRequestId is "
                    f"{status.last_request_id or 'unset'}): is the operator running?"
                )
            self.sleep(POLL_SECONDS)


# ---------------------------------------------------------------------------------------------
# The status summary.


def _status(body: dict[str, Any]) -> ModelDeploymentStatus:
    return ModelDeploymentStatus.model_validate(body.get("status") or {})


def _where(body: dict[str, Any]) -> str:
    meta = body.get("metadata") or {}
    return f"{meta.get('namespace', '?')}/{meta.get('name', '?')}"


def _headline(status: ModelDeploymentStatus) -> str:
    phase = status.phase.value if status.phase else "Unknown"
    text = f"phase {phase}, stable {status.stable_version or 'none'}"
    if status.canary_version is not None:
        text += f", canary {status.canary_version} at {status.canary_weight or 0}%"
    return text


def _value(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:g}{unit}"


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  " + row[-1]
        for row in rows
    ]  # fmt: skip


def describe(body: dict[str, Any]) -> str:
    """A ModelDeployment as `kubectl modeldeploy status` prints it."""
    spec = body.get("spec") or {}
    rollout = spec.get("rollout") or {}
    steps: list[int] = list(rollout.get("steps") or [])
    status = _status(body)
    lines = [f"ModelDeployment {_where(body)}"]

    def field(label: str, text: str) -> None:
        lines.append(f"  {label + ':':<15}{text}")

    field("Phase", status.phase.value if status.phase else "Unknown (not reconciled yet)")
    field("Stable", status.stable_version or "none")
    if status.canary_version is None:
        field("Canary", "none (no rollout in progress)")
    else:
        field("Canary", status.canary_version)
        field("Weight", f"{status.canary_weight or 0}%")
        if status.current_step is not None and steps:
            field(
                "Step",
                f"{status.current_step + 1} of {len(steps)} "
                f"(steps {', '.join(f'{s}%' for s in steps)})",
            )
        analysis = rollout.get("analysis") or {}
        allowed = analysis.get("maxFailedChecks")
        failed = status.failed_checks or 0
        field("Failed checks", f"{failed} of {allowed}" if allowed else str(failed))
    paused = []
    if rollout.get("paused"):
        paused.append("spec.rollout.paused")
    if paused_by_request(status):
        paused.append("kubectl modeldeploy pause")
    field("Paused", f"yes ({', '.join(paused)})" if paused else "no")
    if status.url:
        field("URL", status.url)
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    request_id = annotations.get(REQUEST_ID_ANNOTATION)
    if request_id:
        handled = "handled" if request_id == status.last_request_id else "pending"
        field(
            "Last request",
            f"{annotations.get(REQUEST_ANNOTATION, '?')} for canary "
            f"{annotations.get(REQUEST_CANARY_ANNOTATION, '?')} ({request_id}, {handled})",
        )
    if status.conditions:
        lines.append("  Conditions:")
        lines += _table(
            [[c.type, c.status.value, c.reason or "", c.message or ""] for c in status.conditions],
            indent="    ",
        )
    last = status.last_analysis
    if last is None:
        lines.append("  Last analysis: none")
    else:
        when = last.time.isoformat().replace("+00:00", "Z") if last.time else "unknown time"
        about = []
        if last.canary_version is not None:
            about.append(f"canary {last.canary_version}")
        if last.step is not None:
            about.append(f"step {last.step + 1}")
        verdict = "passed" if last.passed else "did not pass"
        lines.append(
            f"  Last analysis: {verdict} at {when}" + (f" ({', '.join(about)})" if about else "")
        )
        if last.message:
            lines.append(f"    {last.message}")
        if last.checks:
            rows = [["CHECK", "VALUE", "THRESHOLD", "RESULT", "DETAIL"]]
            for check in last.checks:
                unit = CHECK_UNITS.get(check.name, "")
                rows.append(
                    [
                        check.name,
                        _value(check.value, unit),
                        _value(check.threshold, unit),
                        "pass" if check.passed else "no data" if check.value is None else "FAIL",
                        check.message or "",
                    ]
                )
            lines += _table(rows, indent="    ")
    return "\n".join(line.rstrip() for line in lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Arguments.


def _seconds(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return api.parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def parser(prog: str = "kubectl modeldeploy") -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog=prog, description="Watch and steer ModelDeployment rollouts."
    )
    verbs = root.add_subparsers(dest="verb", required=True, metavar="VERB")
    helps = {
        "status": "show phase, versions, weight, step and the last analysis",
        "promote": "skip the remaining steps and promote the canary",
        "abort": "roll back to the stable version now",
        "pause": "hold the rollout at its current step",
        "resume": "continue a rollout paused with `pause`",
    }
    for verb in VERBS:
        sub = verbs.add_parser(verb, help=helps[verb], description=helps[verb])
        sub.add_argument("name", metavar="NAME", help="the ModelDeployment")
        sub.add_argument("-n", "--namespace", help="its namespace (default: the context's)")
        sub.add_argument("--context", help="kubeconfig context to use")
        sub.add_argument("--kubeconfig", help="kubeconfig file to use")
        if verb in REQUEST_VERBS:
            sub.add_argument(
                "--wait", action="store_true", help="wait until the operator has acted"
            )
            sub.add_argument(
                "--timeout",
                type=_seconds,
                default=60.0,
                help="how long --wait waits (seconds or a duration like 2m; default 60)",
            )
    return root


def main(
    argv: Sequence[str] | None = None,
    *,
    runner: Runner | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    plugin: Plugin | None = None,
) -> int:
    """Entry point of `kubectl-modeldeploy` and of `modeldeploy <verb>`; argv[0] is the verb."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = parser().parse_args(args_list)
    except SystemExit as exit_:  # argparse printed usage or help
        return int(exit_.code or 0)
    tool = plugin or Plugin(runner=runner or run_kubectl, out=out, err=err)
    try:
        if args.verb == "status":
            return tool.status(args)
        return tool.request(args)
    except PluginError as error:
        tool.err.write(f"error: {error}\n")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
