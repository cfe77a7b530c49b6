"""`make bench-chaos`: what happens to rollouts when something dies (issue #14, items 4-7).

Scenarios (`--scenarios`, comma-separated; the default runs the ones that kill nothing shared):
  operator-kill  N concurrent canary rollouts (a fifth of them fail their first check): once
                 without interference (the baseline), then again while the operator is SIGKILLed
                 at K random moments and restarted each time. Judged: every rollout ends where its
                 analysis says, the canary weights each one went through (every status it wrote,
                 seen by a watch) are exactly its steps, the analyses it made beyond its steps,
                 no child without a living owner, and its writes (the apiserver's audit log)
                 against the baseline's.
  leader-kill    two replicas with kopf peering (the chart's HA mode); the leader is SIGKILLed
                 mid-rollout and a few models are deleted at once: the standby's takeover time
                 against the peering lifetime, and no write for a deleted model (audit log).
  prometheus     the canaries' Prometheus refuses connections for 60 s mid-rollout: no rollout
                 rolled back, no step taken during the outage, every one finished after it.
  crd            the ModelDeployment CRD re-applied with a changed spec (as another checkout's
                 CRD is): its storage re-initialises; a change made right after is timed until
                 the operator has applied it.
  apiserver, etcd  (shared components: run only in a quiet window) the component is SIGKILLed,
                 left down for --down-seconds, restarted with its own command line; a change made
                 as soon as the apiserver is ready again is timed until applied (goal: 10 s).

Pods run on kwok's fake nodes and Prometheus is a scripted stand-in
(tests/support/scripted_prometheus.py), so what is measured is the operator and the control
plane. Results: bench/results/chaos.md (each scenario's section is replaced by its latest run).
Not a test: nothing here fails a build; a property not met is written down as not met.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modeldeploy_operator import controller, kinds, naming  # noqa: E402

from tests.support.audit import AuditLog, Write  # noqa: E402
from tests.support.kube import Kubectl, KubectlError  # noqa: E402
from tests.support.models import model  # noqa: E402
from tests.support.operator_process import OperatorProcess  # noqa: E402
from tests.support.scripted_prometheus import ScriptedPrometheus  # noqa: E402

KUBECONFIG = Path(os.environ.get("KUBECONFIG") or ROOT / ".cluster" / "kubeconfig")
CRD = ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"
CRD_NAME = f"{kinds.MODEL_DEPLOYMENT.plural}.{kinds.MODEL_DEPLOYMENT.group}"
PEERING_CRDS = ROOT / "charts" / "modeldeploy" / "crds" / "kopf.dev_peerings.yaml"
RESULTS = ROOT / "bench" / "results" / "chaos.md"
# The operators' logs, kept for a look after a run.
LOGS = Path(tempfile.gettempdir()) / "modeldeploy-chaos"
STEPS = [20, 40, 60]
SAFE_SCENARIOS = ("operator-kill", "leader-kill", "prometheus", "crd")
SHARED_SCENARIOS = ("apiserver", "etcd")
POLL = 0.2
PEERING = "md"
PEERING_POLL = controller.PEERING_POLL_SECONDS


def now() -> float:
    return time.monotonic()


# -- what the cluster says ------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """One status a ModelDeployment went through, as a watch delivered it."""

    at: float
    name: str
    weight: int | None
    stable: str
    phase: str
    reason: str
    analysis: str  # status.lastAnalysis.time
    judged: str  # status.lastAnalysis.canaryVersion

    def status(self) -> dict[str, Any]:
        """The part of the status `Workload.ended` reads."""
        return {
            "stableVersion": self.stable,
            "phase": self.phase,
            "lastAnalysis": {"canaryVersion": self.judged},
        }


STATE_TEMPLATE = "|".join(
    (
        "{.metadata.name}",
        "{.status.canaryWeight}",
        "{.status.stableVersion}",
        "{.status.phase}",
        '{.status.conditions[?(@.type=="Progressing")].reason}',
        "{.status.lastAnalysis.time}",
        "{.status.lastAnalysis.canaryVersion}",
    )
)


class StatusWatch:
    """Every status of every ModelDeployment in a namespace while it runs (a watch, so no state
    between two polls is missed). kubectl ends its watch when the apiserver does (the CRD's
    storage replaced by another run's CRD apply, an apiserver restart): it is started again, and
    the restarts are counted (a state written during the gap can be missed)."""

    def __init__(self, k: Kubectl) -> None:
        self.k = k
        self.states: list[State] = []
        self.unreadable: list[str] = []  # lines kubectl printed that are not one state
        self.restarts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._stopping = threading.Event()
        self._reader: threading.Thread | None = None

    def __enter__(self) -> StatusWatch:
        self._reader = threading.Thread(target=self._follow, daemon=True)
        self._reader.start()
        return self

    def _follow(self) -> None:
        cmd = [
            "kubectl", f"--kubeconfig={self.k.kubeconfig}", f"--namespace={self.k.namespace}",
            "get", "md", "--watch", "-o", f'jsonpath={STATE_TEMPLATE}{{"\\n"}}',
        ]  # fmt: skip
        while not self._stopping.is_set():
            self._proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
            assert self._proc.stdout is not None
            for line in self._proc.stdout:
                self._read(line)
            self._proc.wait()
            if not self._stopping.is_set():
                self.restarts += 1
                time.sleep(POLL)

    def _read(self, line: str) -> None:
        fields = line.rstrip("\n").split("|")
        if len(fields) != STATE_TEMPLATE.count("|") + 1:
            self.unreadable.append(line)
            return
        name, weight, stable, phase, reason, analysis, judged = fields
        parsed = int(weight) if weight else None
        self.states.append(State(now(), name, parsed, stable, phase, reason, analysis, judged))

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=10)
        if self._reader is not None:
            self._reader.join(timeout=10)

    def of(self, name: str, since: float) -> list[State]:
        return [s for s in list(self.states) if s.name == name and s.at >= since]


def weights_taken(states: list[State]) -> list[int]:
    """The canary weights in the order they were set (repeats of one status collapsed)."""
    seen = [s.weight for s in states if s.weight]
    return [w for w, _ in itertools.groupby(seen) if w is not None]


def weight_at(states: list[State], moment: float) -> int | None:
    """The canary weight the last status before `moment` showed."""
    before = [s.weight for s in states if s.at <= moment]
    return before[-1] if before else None


def statuses(k: Kubectl) -> dict[str, dict[str, Any]]:
    return {md["metadata"]["name"]: md.get("status", {}) for md in k.list("md")}


def wait_until(done: Callable[[], bool], timeout: float, what: str) -> float:
    start = now()
    while now() - start < timeout:
        with contextlib.suppress(KubectlError):
            if done():
                return now() - start
        time.sleep(POLL)
    raise TimeoutError(f"{what}: not after {timeout:.0f} s")


def apply_all(k: Kubectl, bodies: list[dict[str, Any]]) -> None:
    k.run(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": bodies})
    )


def fresh_namespace(kube: Kubectl, name: str) -> Kubectl:
    kube.run("delete", "namespace", name, "--ignore-not-found", "--wait=true", timeout=330)
    kube.run("create", "namespace", name)
    return kube.in_namespace(name)


def ownerless_children(k: Kubectl) -> list[str]:
    """Children of ours whose owner is not a ModelDeployment that exists."""
    uids = {md["metadata"]["uid"] for md in k.list("md")}
    orphans: list[str] = []
    for kind in kinds.CHILD_KINDS:
        try:
            items = k.list(f"{kind.plural}.{kind.group}" if kind.group else kind.plural,
                           naming.MANAGED_SELECTOR)  # fmt: skip
        except KubectlError:
            continue  # an optional kind whose CRD this cluster lacks
        for item in items:
            owners = {ref.get("uid") for ref in item["metadata"].get("ownerReferences", [])}
            if not owners & uids:
                orphans.append(f"{item['kind']}/{item['metadata']['name']}")
    return orphans


def writes_by_model(writes: list[Write], names: list[str]) -> Counter[str]:
    """Each write to a model or one of its children (named `<model>-...` or `<model>`)."""
    counts: Counter[str] = Counter()
    for write in writes:
        for name in names:
            if write.name == name or write.name.startswith(name + "-"):
                counts[name] += 1
    return counts


# -- the workload ---------------------------------------------------------------------------


@dataclass
class Workload:
    """N canary rollouts, a fifth of which fail their first analysis."""

    n: int
    interval: float
    prometheus: ScriptedPrometheus
    names: list[str] = field(init=False)
    failing: set[str] = field(init=False)

    def __post_init__(self) -> None:
        n_failing = max(1, self.n // 5)
        self.failing = {f"f{i:02d}" for i in range(n_failing)}
        self.names = sorted(self.failing) + [f"p{i:02d}" for i in range(self.n - n_failing)]

    def rollout(self) -> dict[str, Any]:
        return {
            "steps": STEPS,
            "stepInterval": f"{self.interval:g}s",
            "analysis": {
                "prometheusUrl": self.prometheus.url,
                "successRate": {"min": 99},
                "maxFailedChecks": 1,
            },
        }

    def bodies(self, version: str) -> list[dict[str, Any]]:
        return [model(name, version, replicas=1, rollout=self.rollout()) for name in self.names]

    def expected_weights(self, name: str) -> list[int]:
        return STEPS[:1] if name in self.failing else STEPS

    def ended(self, version: str, status: dict[str, Any], name: str) -> bool:
        if name in self.failing:
            # Failed after judging this version (a rollback of the previous one says Failed too).
            judged = status.get("lastAnalysis", {}).get("canaryVersion")
            return status.get("phase") == "Failed" and judged == version
        return status.get("stableVersion") == version and status.get("phase") == "Ready"

    def all_ended(self, k: Kubectl, version: str) -> bool:
        current = statuses(k)
        return all(self.ended(version, current.get(name, {}), name) for name in self.names)


def first_end(work: Workload, name: str, version: str, states: list[State]) -> float | None:
    """When the first of `states` that ends the rollout was seen."""
    for s in states:
        if work.ended(version, s.status(), name):
            return s.at
    return None


@dataclass
class Verdict:
    wrong_end: list[str]
    wrong_steps: dict[str, list[int]]
    extra_analyses: Counter[str]
    orphans: list[str]
    writes: Counter[str]

    @property
    def ok(self) -> bool:
        return not (self.wrong_end or self.wrong_steps or self.orphans)


def judge(
    k: Kubectl, work: Workload, watch: StatusWatch, names: list[str], since: float, version: str
) -> tuple[list[str], dict[str, list[int]], Counter[str]]:
    current = statuses(k)
    wrong_end = [n for n in names if not work.ended(version, current.get(n, {}), n)]
    wrong_steps: dict[str, list[int]] = {}
    extra: Counter[str] = Counter()
    for name in names:
        states = watch.of(name, since)
        taken = weights_taken(states)
        if taken != work.expected_weights(name):
            wrong_steps[name] = taken
        before = {s.analysis for s in watch.of(name, 0) if s.at < since}
        analyses = {s.analysis for s in states if s.analysis and s.analysis not in before}
        extra[name] = max(0, len(analyses) - len(work.expected_weights(name)))
    return wrong_end, wrong_steps, +extra


def roll(
    k: Kubectl,
    work: Workload,
    watch: StatusWatch,
    audit: AuditLog,
    version: str,
    during: Callable[[float], None] = lambda _: None,
    timeout: float = 600,
) -> tuple[Verdict, float]:
    """Roll every model out to `version`, calling `during(elapsed)` while waiting; judged."""
    mark = audit.mark()
    since = now()
    apply_all(k, work.bodies(version))
    while not work.all_ended(k, version):
        if now() - since > timeout:
            break
        during(now() - since)
        time.sleep(POLL)
    elapsed = now() - since
    wrong_end, wrong_steps, extra = judge(k, work, watch, work.names, since, version)
    if watch.unreadable or watch.restarts:
        print(f"status watch restarted {watch.restarts} times; unreadable lines: "
              f"{watch.unreadable[:3]!r}")  # fmt: skip
    writes = writes_by_model(audit.writes_since(mark, str(k.namespace)), work.names)
    return Verdict(wrong_end, wrong_steps, extra, ownerless_children(k), writes), elapsed


def describe_verdict(v: Verdict) -> list[str]:
    return [
        f"| rollouts not ended where their analysis says | {len(v.wrong_end)} "
        f"{sorted(v.wrong_end)[:5] if v.wrong_end else ''} |",
        f"| rollouts whose weights were not exactly their steps | {len(v.wrong_steps)} "
        f"{dict(list(v.wrong_steps.items())[:5]) if v.wrong_steps else ''} |",
        f"| analyses beyond one per step (total, max per rollout) | "
        f"{sum(v.extra_analyses.values())}, {max(v.extra_analyses.values(), default=0)} |",
        f"| children without a living owner | {len(v.orphans)} {v.orphans[:5] or ''} |",
        f"| operator writes (audit log), total / max per rollout | "
        f"{sum(v.writes.values())} / {max(v.writes.values(), default=0)} |",
    ]


def start_ready(k: Kubectl, work: Workload) -> None:
    apply_all(k, work.bodies("1"))
    wait_until(
        lambda: all(statuses(k).get(n, {}).get("phase") == "Ready" for n in work.names),
        300,
        "every model Ready at version 1",
    )


# -- scenarios ------------------------------------------------------------------------------


@dataclass
class Section:
    title: str
    lines: list[str]


Scenario = Callable[[Kubectl, argparse.Namespace, random.Random], Section]


def cell(row: str) -> str:
    """The last cell of a two-column table row."""
    return row.rsplit("|", 2)[1].strip()


def operator_kill(kube: Kubectl, args: argparse.Namespace, rng: random.Random) -> Section:
    k = fresh_namespace(kube, "bench-chaos-kill")
    audit = AuditLog.beside(KUBECONFIG)
    operator = OperatorProcess(KUBECONFIG, LOGS / "operator-kill.log", namespaces=str(k.namespace))
    with ScriptedPrometheus() as prometheus, StatusWatch(k) as watch:
        work = Workload(args.rollouts, args.interval, prometheus)
        prometheus.failing = frozenset(work.failing)
        operator.start()
        try:
            start_ready(k, work)
            baseline, baseline_time = roll(k, work, watch, audit, "2")
            # Kill moments spread over the baseline's duration, so they fall mid-rollout.
            moments = sorted(rng.uniform(1, baseline_time) for _ in range(args.kills))
            killed: list[float] = []

            def kill_at_moments(elapsed: float) -> None:
                if moments and elapsed >= moments[0]:
                    moments.pop(0)
                    operator.kill()
                    killed.append(elapsed)
                    operator.start()

            chaos, chaos_time = roll(k, work, watch, audit, "3", kill_at_moments)
        finally:
            operator.stop()
    excess = {
        name: chaos.writes[name] - baseline.writes[name]
        for name in work.names
        if chaos.writes[name] > baseline.writes[name]
    }
    bound = len(killed)
    within_bound = max(excess.values(), default=0) <= bound
    lines = [
        f"{args.rollouts} rollouts at once ({len(work.failing)} failing their first check), "
        f"steps {STEPS}, stepInterval {args.interval:g}s, maxFailedChecks 1. Baseline v1→v2 "
        f"without interference, then v2→v3 with the operator SIGKILLed {len(killed)} times at "
        f"{', '.join(f'{t:.1f}' for t in killed)} s (seed {args.seed}), restarted each time.",
        "",
        "| measure | baseline | with kills |",
        "|---|---|---|",
        f"| all rollouts ended (s) | {baseline_time:.1f} | {chaos_time:.1f} |",
        *(
            f"{a.rsplit('|', 2)[0]}| {cell(a)} | {cell(b)} |"
            for a, b in zip(describe_verdict(baseline), describe_verdict(chaos), strict=True)
        ),
        "",
        f"Write bound stated: a restart may repeat at most one pass per model, so a rollout makes "
        f"at most its baseline writes plus one per kill ({bound}). Rollouts above the bound: "
        f"{ {n: e for n, e in excess.items() if e > bound} or 'none' }; above the baseline: "
        f"{len(excess)} (max excess {max(excess.values(), default=0)}).",
        f"The status watch was restarted {watch.restarts} times (ended by the apiserver, e.g. "
        "another run's CRD apply); a state written in such a gap may be missing above.",
        f"Verdict: {'met' if chaos.ok and within_bound else 'NOT met'}.",
    ]
    kube.run("delete", "namespace", str(k.namespace), "--wait=false")
    return Section("Operator SIGKILLed during rollouts (item 4)", lines)


def sample(op: OperatorProcess, series: str) -> float:
    with contextlib.suppress(OSError):
        for line in op.metrics().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
    return 0.0


def leading(op: OperatorProcess) -> bool:
    return sample(op, "modeldeploy_operator_leading") == 1


def leader_kill(kube: Kubectl, args: argparse.Namespace, rng: random.Random) -> Section:
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(PEERING_CRDS))
    kube.run("wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev")
    k = fresh_namespace(kube, "bench-chaos-ha")
    k.create({"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": PEERING}})
    audit = AuditLog.beside(KUBECONFIG)

    def replica(name: str, priority: int) -> OperatorProcess:
        return OperatorProcess(
            KUBECONFIG, LOGS / f"leader-kill-{name}.log",
            "--peering", PEERING, "--peering-priority", str(priority),
            "--peering-lifetime", str(args.lease), namespaces=str(k.namespace),
        )  # fmt: skip

    standby, leader = replica("standby", 10), replica("leader", 20)
    with ScriptedPrometheus() as prometheus, StatusWatch(k) as watch:
        work = Workload(args.ha_rollouts, args.interval, prometheus)
        prometheus.failing = frozenset(work.failing)
        standby.start()
        leader.start()
        try:
            wait_until(lambda: leading(leader) and not leading(standby), 120, "leader leading")
            start_ready(k, work)
            deleted = rng.sample([n for n in work.names if n not in work.failing], args.deletions)
            kill_after = rng.uniform(args.interval, 2 * args.interval)
            handover: dict[str, float] = {}
            liveness_restarts: list[float] = []
            failed_probes = [0]
            mark = 0

            def kill_leader(elapsed: float) -> None:
                nonlocal mark
                if "killed" not in handover and elapsed >= kill_after:
                    leader.kill()
                    handover["killed"] = now()
                    for name in deleted:
                        k.delete("md", name)
                    handover["deleted"] = now()
                    # Counted from here: a request the killed leader had in flight may complete
                    # (and be logged) after the kill, before the deletion. Nothing else can write
                    # before the standby leads, a peering lifetime after the kill.
                    mark = audit.mark()
                if "killed" in handover and "leading" not in handover and leading(standby):
                    handover["leading"] = now()
                if "killed" in handover:
                    # What a liveness probe does to a replica whose workers stopped: three
                    # failed probes in a row, a restart.
                    failed_probes[0] = 0 if standby.probe("/healthz") else failed_probes[0] + 1
                    if failed_probes[0] >= 3:
                        standby.kill()
                        liveness_restarts.append(now() - handover["killed"])
                        standby.start()
                        failed_probes[0] = 0

            remaining = [n for n in work.names if n not in deleted]
            work_left = Workload(args.ha_rollouts, args.interval, prometheus)
            work_left.names = remaining
            since = now()
            apply_all(k, work.bodies("2"))
            while not work_left.all_ended(k, "2") and now() - since < 600:
                kill_leader(now() - since)
                time.sleep(POLL)
            elapsed = now() - since
            wrong_end, wrong_steps, extra = judge(k, work_left, watch, remaining, since, "2")
            ghosts = writes_by_model(audit.writes_since(mark, str(k.namespace)), deleted)
            orphans = ownerless_children(k)
        finally:
            leader.kill()
            standby.stop()
    takeover = handover.get("leading", float("nan")) - handover.get("killed", float("nan"))
    takeover_bound = args.lease + 2 * PEERING_POLL
    lines = [
        f"Two replicas (kopf peering, lifetime {args.lease} s, the standby polls the peering "
        f"object every 2 s); {args.ha_rollouts} rollouts at once (steps {STEPS}, stepInterval "
        f"{args.interval:g}s); the leader SIGKILLed {kill_after:.1f} s into them and "
        f"{len(deleted)} models deleted right after ({', '.join(deleted)}).",
        "",
        "| measure | result |",
        "|---|---|",
        f"| standby leading, after the kill | {takeover:.1f} s (lifetime {args.lease} s) |",
        f"| all remaining rollouts ended | {elapsed:.1f} s |",
        f"| standby restarted for a failing /healthz (as by a liveness probe), s after the kill "
        f"| {', '.join(f'{t:.1f}' for t in liveness_restarts) or 'never'} |",
        f"| rollouts not ended where their analysis says | {len(wrong_end)} {wrong_end[:5]} |",
        f"| rollouts whose weights were not exactly their steps | {len(wrong_steps)} "
        f"{dict(list(wrong_steps.items())[:5])} |",
        f"| analyses beyond one per step (total) | {sum(extra.values())} |",
        f"| operator writes for deleted models after their deletion | {sum(ghosts.values())} "
        f"{dict(ghosts) or ''} |",
        f"| children without a living owner | {len(orphans)} {orphans[:5] or ''} |",
        "",
        f"The status watch was restarted {watch.restarts} times (ended by the apiserver, e.g. "
        "another run's CRD apply); a state written in such a gap may be missing above.",
        "Verdict: "
        + (
            "met"
            if takeover <= takeover_bound and not (wrong_end or wrong_steps or ghosts or orphans)
            else "NOT met"
        )
        + f" (takeover bound stated: lifetime + two peering polls = {takeover_bound:g} s).",
    ]
    kube.run("delete", "namespace", str(k.namespace), "--wait=false")
    return Section("Leader SIGKILLed in HA mode (item 6)", lines)


def prometheus_outage(kube: Kubectl, args: argparse.Namespace, rng: random.Random) -> Section:
    k = fresh_namespace(kube, "bench-chaos-prom")
    audit = AuditLog.beside(KUBECONFIG)
    operator = OperatorProcess(KUBECONFIG, LOGS / "prometheus.log", namespaces=str(k.namespace))
    # Back from its outage, it has no samples for a while, as a restarted Prometheus.
    prometheus = ScriptedPrometheus(gap_after_restart=args.interval)
    prometheus.start()
    with StatusWatch(k) as watch:
        work = Workload(args.prom_rollouts, args.interval, prometheus)
        prometheus.failing = frozenset(work.failing)
        operator.start()
        outage: dict[str, float] = {}
        try:
            start_ready(k, work)

            def stop_for_a_while(_: float) -> None:
                current = statuses(k)
                passing = [n for n in work.names if n not in work.failing]
                if "stopped" not in outage and all(
                    current.get(n, {}).get("canaryWeight") for n in passing
                ):
                    prometheus.stop()  # every passing canary is at a step: mid-rollout
                    outage["stopped"] = now()
                elif "stopped" in outage and "back" not in outage:
                    if now() - outage["stopped"] < args.outage:
                        return
                    prometheus.start()
                    outage["back"] = now()

            verdict, elapsed = roll(k, work, watch, audit, "2", stop_for_a_while)
        finally:
            operator.stop()
            prometheus.stop()
    stopped, back = outage.get("stopped", float("nan")), outage.get("back", float("nan"))
    # A step whose analysis answered just before the stop may still be written just after it.
    quiet_from = stopped + args.interval
    advanced = sorted(
        name
        for name in work.names
        if any(
            s.weight != weight_at(watch.of(name, 0), quiet_from)
            for s in watch.of(name, quiet_from)
            if s.at < back
        )
    )
    deadline_rollbacks = [
        n for n in work.names if any(s.reason == "ProgressDeadlineExceeded" for s in watch.of(n, 0))
    ]
    finish = [
        ended - back
        for name in work.names
        if (ended := first_end(work, name, "2", watch.of(name, back))) is not None
    ]
    lines = [
        f"{args.prom_rollouts} rollouts at once ({len(work.failing)} failing their first check), "
        f"steps {STEPS}, stepInterval {args.interval:g}s, progressDeadline 10m (default); the "
        f"scripted Prometheus refused connections for {back - stopped:.0f} s once every canary "
        f"was at its first step, then answered no data for {args.interval:g} s (a restarted "
        "Prometheus has no samples for its outage).",
        "",
        "| measure | result |",
        "|---|---|",
        *describe_verdict(verdict),
        f"| rolled back for want of an answer (ProgressDeadlineExceeded) | {deadline_rollbacks} |",
        f"| rollouts that changed weight during the outage | {sorted(advanced)} |",
        f"| rollouts ended after Prometheus returned / time to the last | {len(finish)} / "
        f"{max(finish, default=float('nan')):.1f} s |",
        f"| all rollouts ended | {elapsed:.1f} s |",
        "",
        f"The status watch was restarted {watch.restarts} times (ended by the apiserver, e.g. "
        "another run's CRD apply); a state written in such a gap may be missing above.",
        "Verdict: "
        + ("met" if verdict.ok and not deadline_rollbacks and not advanced else "NOT met")
        + ".",
    ]
    kube.run("delete", "namespace", str(k.namespace), "--wait=false")
    return Section("Prometheus unreachable for a minute during rollouts (item 7)", lines)


def change_and_time(k: Kubectl, name: str, replicas: int, timeout: float = 300) -> float:
    """Change the model's replicas now; seconds until its Deployment asks for them."""
    k.apply(model(name, "1", replicas=replicas))

    def applied() -> bool:
        deployment = k.get("deployment", naming.track_name(name, "1"))
        return bool(deployment and deployment["spec"]["replicas"] == replicas)

    return wait_until(applied, timeout, f"{name} scaled to {replicas}")


def watched_model(kube: Kubectl, name: str) -> tuple[Kubectl, OperatorProcess]:
    k = fresh_namespace(kube, f"bench-chaos-{name}")
    operator = OperatorProcess(KUBECONFIG, LOGS / f"{name}.log", namespaces=str(k.namespace))
    operator.start()
    k.apply(model("watched", "1", replicas=1))
    wait_until(lambda: statuses(k).get("watched", {}).get("phase") == "Ready", 120, "watched Ready")
    return k, operator


def crd_reapplied(kube: Kubectl, args: argparse.Namespace, rng: random.Random) -> Section:
    k, operator = watched_model(kube, "crd")
    crd = json.loads(kube.run("get", "crd", CRD_NAME, "-o", "json"))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    figures: list[float] = []
    try:
        for round_ in range(args.rounds):
            # A spec change: the apiserver replaces the resource's storage (and its watch cache).
            schema["description"] = f"ModelDeployment (chaos bench {uuid.uuid4().hex[:6]})"
            kube.run("replace", "-f", "-", stdin=json.dumps(crd))
            crd = json.loads(kube.run("get", "crd", CRD_NAME, "-o", "json"))
            schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            time.sleep(args.settle)
            figures.append(change_and_time(k, "watched", 2 + round_ % 2))
    finally:
        operator.stop()
        kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.run("delete", "namespace", str(k.namespace), "--wait=false")
    return Section(
        "CRD re-applied with a changed spec (item 5)",
        [
            f"The CRD's spec changed {args.rounds} times (its schema's description), each "
            "followed at once by a change of one model's replicas; seconds from that change to "
            "its Deployment asking for them:",
            "",
            f"{', '.join(f'{f:.1f}' for f in figures)} (max {max(figures):.1f} s; goal 10 s: "
            f"{'met' if max(figures) <= 10 else 'NOT met'}).",
        ],
    )


class ControlPlaneComponent:
    """One process of the local cluster (kwokctl's binary runtime: a pid file per component),
    killed and started again with the command line, directory and environment it had."""

    def __init__(self, kubeconfig: Path, name: str) -> None:
        [cluster] = (kubeconfig.parent / "kwok" / "clusters").iterdir()
        self.pid_file = cluster / "pids" / f"{name}.pid"
        self.log_file = cluster / "logs" / f"{name}.log"
        self.name = name
        self._argv: list[str] = []
        self._cwd = ""
        self._env: dict[str, str] = {}

    def kill(self) -> None:
        pid = int(self.pid_file.read_text())
        proc = Path(f"/proc/{pid}")
        self._argv = (proc / "cmdline").read_bytes().decode().rstrip("\0").split("\0")
        self._cwd = os.readlink(proc / "cwd")
        environ = (proc / "environ").read_bytes().decode().rstrip("\0").split("\0")
        self._env = dict(item.split("=", 1) for item in environ if "=" in item)
        os.kill(pid, signal.SIGKILL)
        while proc.exists() and "zombie" not in (proc / "status").read_text():
            time.sleep(0.05)

    def start(self) -> None:
        with self.log_file.open("ab") as log:
            started = subprocess.Popen(
                self._argv, cwd=self._cwd, env=self._env, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        self.pid_file.write_text(str(started.pid))


def dead_components(kubeconfig: Path) -> list[str]:
    """The cluster's processes (control plane, and the real node's if any) whose pid file names
    a process that is gone: cluster/up.sh would call such a cluster unhealthy and rebuild it."""
    state = kubeconfig.parent
    dead = []
    for pid_file in [*state.glob("kwok/clusters/*/pids/*.pid"), *state.glob("node/pids/*.pid")]:
        if not Path(f"/proc/{pid_file.read_text().strip()}").exists():
            dead.append(pid_file.stem)
    return dead


def restart_dead_components(kubeconfig: Path) -> list[str]:
    """Start again, from kwokctl's own component definitions, the control-plane processes that
    exited: kube-scheduler and kube-controller-manager end themselves when they cannot renew their
    leader lease (the apiserver away longer than 10 s), and kwokctl's binary runtime does not
    restart them as a kubelet or systemd would. The names restarted."""
    restarted = []
    for cluster in (kubeconfig.parent / "kwok" / "clusters").iterdir():
        for doc in yaml.safe_load_all((cluster / "kwok.yaml").read_text()):
            for comp in doc.get("components", []) if isinstance(doc, dict) else []:
                pid_file = cluster / "pids" / f"{comp['name']}.pid"
                if not pid_file.exists() or Path(f"/proc/{pid_file.read_text().strip()}").exists():
                    continue
                with (cluster / "logs" / f"{comp['name']}.log").open("ab") as log:
                    started = subprocess.Popen(
                        [comp["binary"], *comp["args"]], cwd=comp["workDir"], stdout=log,
                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                    )  # fmt: skip
                pid_file.write_text(str(started.pid))
                restarted.append(comp["name"])
    return restarted


def api_ready(kube: Kubectl) -> bool:
    try:
        kube.run("get", "--raw", "/readyz", timeout=5)
    except (KubectlError, subprocess.TimeoutExpired):
        return False
    return True


def component_restarted(component: str) -> Scenario:
    def scenario(kube: Kubectl, args: argparse.Namespace, rng: random.Random) -> Section:
        k, operator = watched_model(kube, component)
        process = ControlPlaneComponent(KUBECONFIG, component)
        try:
            process.kill()
            killed = now()
            time.sleep(args.down_seconds)
            process.start()
            wait_until(lambda: api_ready(kube), 120, "the apiserver ready again")
            back = now()
            dead = dead_components(KUBECONFIG)
            restarted = restart_dead_components(KUBECONFIG)
            # Writes may still be refused for a moment after /readyz: retried until accepted.
            while True:
                try:
                    figure = change_and_time(k, "watched", 3)
                    break
                except KubectlError:
                    time.sleep(POLL)
            accepted = now() - back - figure
            alive = operator.running
        finally:
            operator.stop()
            restart_dead_components(KUBECONFIG)
        kube.run("delete", "namespace", str(k.namespace), "--wait=false")
        return Section(
            f"{component} SIGKILLed and restarted (item 5)",
            [
                f"{component} down {back - killed:.1f} s (killed, {args.down_seconds:g} s, "
                "restarted, until /readyz); a model's replicas changed as soon as a write was "
                f"accepted ({accepted:.1f} s after /readyz); seconds until its Deployment asked "
                f"for them: {figure:.1f} (goal 10 s: {'met' if figure <= 10 else 'NOT met'}); "
                f"the operator process {'kept running' if alive else 'EXITED'}; cluster "
                f"processes gone once it was back: {dead or 'none'} (restarted by the harness: "
                f"{restarted or 'none'}).",
            ],
        )

    return scenario


SCENARIOS: dict[str, Scenario] = {
    "operator-kill": operator_kill,
    "leader-kill": leader_kill,
    "prometheus": prometheus_outage,
    "crd": crd_reapplied,
    "apiserver": component_restarted("kube-apiserver"),
    "etcd": component_restarted("etcd"),
}


def write_results(sections: list[Section], header: str) -> None:
    """Replace each scenario's section in the results, keeping the others."""
    existing: dict[str, str] = {}
    if RESULTS.exists():
        parts = re.split(r"^## ", RESULTS.read_text(), flags=re.M)
        for part in parts[1:]:
            title, _, body = part.partition("\n")
            existing[title] = body
    for section in sections:
        existing[section.title] = f"\n_{header}_\n\n" + "\n".join(section.lines) + "\n\n"
    text = "# Chaos benchmark: rollouts while things die (`make bench-chaos`)\n\n"
    text += (
        "Machine shared with other sessions and loaded (figures are under load). "
        "Reproduce a section: `make bench-chaos SCENARIOS=<name>` (see bench/chaos.py).\n\n"
    )
    text += "".join(f"## {title}\n{body}" for title, body in existing.items())
    RESULTS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenarios", default=",".join(SAFE_SCENARIOS),
                        help=f"of {', '.join(SCENARIOS)}")  # fmt: skip
    parser.add_argument("--rollouts", type=int, default=30, help="operator-kill rollouts")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--ha-rollouts", type=int, default=20)
    parser.add_argument("--deletions", type=int, default=3)
    parser.add_argument("--lease", type=int, default=10, help="peering lifetime (s)")
    parser.add_argument("--prom-rollouts", type=int, default=20)
    parser.add_argument("--outage", type=float, default=60)
    parser.add_argument("--interval", type=float, default=5, help="stepInterval (s)")
    parser.add_argument("--rounds", type=int, default=2, help="CRD changes")
    parser.add_argument("--settle", type=float, default=3, help="CRD change → model change (s)")
    parser.add_argument("--down-seconds", type=float, default=10)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    chosen = [s for s in args.scenarios.split(",") if s]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}")
    LOGS.mkdir(parents=True, exist_ok=True)
    kube = Kubectl(KUBECONFIG)
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.run("wait", "--for=condition=Established", f"crd/{CRD_NAME}")
    rng = random.Random(args.seed)
    load = os.getloadavg()[0]
    sections = []
    for name in chosen:
        print(f"scenario {name}...", flush=True)
        section = SCENARIOS[name](kube, args, rng)
        print("\n".join(section.lines), flush=True)
        sections.append(section)
    header = (
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} "
        f"cores, load average {load:.1f} before), "
        f"`python bench/chaos.py --scenarios {','.join(chosen)}`"
    )
    write_results(sections, header)
    print(f"results written to {RESULTS.relative_to(ROOT)}; operator logs in {LOGS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
