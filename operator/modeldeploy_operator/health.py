"""What the cluster says about a version's pods: the observed half of an honest status.

Pure functions over the Deployment and Pod bodies the watches deliver. A Deployment that counts
its replicas "available" is not enough (KServe reports Ready while pods crash-loop): waiting
reasons such as CrashLoopBackOff or ImagePullBackOff are read from the pods themselves, and the
Deployment controller's own ProgressDeadlineExceeded is honoured.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# Container waiting reasons that mean "this will not become ready by itself".
STUCK_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class PodProblem:
    pod: str
    container: str
    reason: str
    message: str

    def describe(self) -> str:
        text = f"pod {self.pod} container {self.container}: {self.reason}"
        return f"{text} ({self.message})" if self.message else text


@dataclass(frozen=True)
class DeploymentHealth:
    name: str
    desired: int
    replicas: int
    ready: int
    available: int
    updated: int
    current_generation_observed: bool
    progress_deadline_exceeded: bool
    problems: tuple[PodProblem, ...] = ()

    @property
    def rolled_out(self) -> bool:
        """Every desired replica runs the current template and is ready."""
        return (
            self.current_generation_observed
            and self.updated >= self.desired
            and self.ready >= self.desired
            and self.available >= self.desired
        )

    @property
    def serving(self) -> bool:
        """At least one ready pod can take traffic."""
        return self.ready > 0

    @property
    def stuck(self) -> bool:
        return self.progress_deadline_exceeded or bool(self.problems)

    def explain(self) -> str:
        parts = [f"{self.ready}/{self.desired} replicas ready"]
        if self.progress_deadline_exceeded:
            parts.append("progress deadline exceeded")
        parts.extend(p.describe() for p in self.problems[:3])
        return f"deployment {self.name}: " + "; ".join(parts)


def pod_problems(pods: Iterable[dict[str, Any]]) -> tuple[PodProblem, ...]:
    problems: list[PodProblem] = []
    for pod in pods:
        if pod.get("metadata", {}).get("deletionTimestamp"):
            continue
        status = pod.get("status", {})
        statuses = status.get("initContainerStatuses", []) + status.get("containerStatuses", [])
        for container in statuses:
            state = container.get("state", {})
            waiting = state.get("waiting") or {}
            terminated = state.get("terminated") or {}
            reason = waiting.get("reason", "")
            if reason in STUCK_REASONS:
                problems.append(
                    PodProblem(
                        pod["metadata"]["name"],
                        container.get("name", ""),
                        reason,
                        waiting.get("message", ""),
                    )
                )
            elif terminated and terminated.get("exitCode", 0) != 0:
                problems.append(
                    PodProblem(
                        pod["metadata"]["name"],
                        container.get("name", ""),
                        terminated.get("reason") or "Error",
                        f"exit code {terminated.get('exitCode')}",
                    )
                )
    return tuple(sorted(problems, key=lambda p: (p.pod, p.container)))


def deployment_health(
    deployment: dict[str, Any], pods: Iterable[dict[str, Any]] = ()
) -> DeploymentHealth:
    meta = deployment.get("metadata", {})
    spec = deployment.get("spec", {})
    status = deployment.get("status", {})
    conditions = {c.get("type"): c for c in status.get("conditions", [])}
    progressing = conditions.get("Progressing", {})
    desired = int(spec.get("replicas", 1))
    return DeploymentHealth(
        name=meta.get("name", ""),
        desired=desired,
        replicas=int(status.get("replicas", 0)),
        ready=int(status.get("readyReplicas", 0)),
        available=int(status.get("availableReplicas", 0)),
        updated=int(status.get("updatedReplicas", 0)),
        current_generation_observed=int(status.get("observedGeneration", 0))
        >= int(meta.get("generation", 1)),
        progress_deadline_exceeded=progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded",
        problems=pod_problems(pods),
    )
