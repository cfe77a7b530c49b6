"""One reconciliation pass for one ModelDeployment: observe → desire → apply → report.

Reads come from the controller's watch-fed view (no API reads per pass). Writes are server-side
applies with the single field manager `modeldeploy`, made only for children that differ from what
is wanted, deletions of children no longer wanted, and a status patch only when the status
changed. Everything that decides *what* should exist is in the pure modules (`rollout`,
`builders`, `status`); this module only makes it so.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import aiohttp
from pydantic import ValidationError

from modeldeploy_operator import kinds, naming
from modeldeploy_operator.api import AnalysisResult, ModelDeployment, parse_duration
from modeldeploy_operator.api import TrafficRouter as TrafficRouterKind
from modeldeploy_operator.builders import BuildContext
from modeldeploy_operator.compare import is_subset
from modeldeploy_operator.desired import Capabilities, DesiredState, desired_state
from modeldeploy_operator.health import DeploymentHealth, deployment_health
from modeldeploy_operator.kinds import Kind, kind_of
from modeldeploy_operator.kube import FIELD_MANAGER, HANDOVER_FIELD_MANAGER, ApiError, KubeClient
from modeldeploy_operator.registry.follow import (
    NOT_FOLLOWING,
    Following,
    after_plan,
    choose_pin,
    pinned_deployment,
)
from modeldeploy_operator.registry.poller import RegistryPoller
from modeldeploy_operator.rollout.analysis.prometheus import AnalysisError
from modeldeploy_operator.rollout.analysis.run import run_analysis
from modeldeploy_operator.rollout.analysis.verdict import Outcome
from modeldeploy_operator.rollout.machine import plan_tracks
from modeldeploy_operator.rollout.plan import AnalysisUnavailable, Plan, Routing
from modeldeploy_operator.rollout.requests import pending_request
from modeldeploy_operator.rollout.routers.base import TrafficRouter
from modeldeploy_operator.rollout.routers.factory import RouterUnavailableError, select_router
from modeldeploy_operator.rollout.routers.replica_ratio import ReplicaRatioRouter
from modeldeploy_operator.settings import OperatorSettings
from modeldeploy_operator.status import compute_status, partial_status, problem_status
from modeldeploy_operator.telemetry import (
    ANALYSIS_UNANSWERED,
    CANARY_WEIGHT,
    RECONCILE_DURATION,
    RECONCILE_ERRORS,
    RECONCILES,
    ROLLED_BACK,
    ROLLOUTS_IN_PROGRESS,
    forget_rollout_series,
)
from modeldeploy_operator.view import ClusterView, Key
from modeldeploy_operator.workqueue import WorkQueue

log = logging.getLogger("modeldeploy.reconciler")

# Recorded on every child: a change of the desired manifest that "desired ⊆ live" cannot see
# (a removed label or env var) still triggers an apply.
APPLIED_HASH = "modeldeploy.dev/applied-hash"
# A failed pass is retried after RETRY_SECONDS, doubled on each consecutive failure up to
# MAX_RETRY_SECONDS: a refusal that needs a person (an immutable field, a policy) is not
# hammered every few seconds, and a transient one is still retried soon.
RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 300.0
# Degraded reasons of a pass that could not make its children so.
CHILD_CONFLICT = "ChildConflict"
APPLY_FAILED = "ApplyFailed"
IMAGE_NOT_ALLOWED = "ImageNotAllowed"
# Apply errors that are no verdict on the manifest: an object changed under us (409), a CRD
# removed while we run (404, handled by rediscovery). Retried without a condition.
TRANSIENT_APPLY_ERRORS = frozenset({404, 409})


class ChildrenNotApplied(Exception):
    """The pass stopped before it changed anything it could not finish: `reason` is the
    Degraded condition's, `message` names each child (or image) and what is wrong with it."""

    def __init__(self, reason: str, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.reason = reason
        self.message = "; ".join(problems)


class ApplyRefused(Exception):
    """The API refused one child's manifest: the message names the child and quotes the API."""


@dataclass(frozen=True)
class Observation:
    """What a pass starts from: the children the view holds and each version's health."""

    children: dict[tuple[str, str], dict[str, Any]]
    health: dict[str, DeploymentHealth]
    time: datetime


@dataclass(frozen=True)
class Decision:
    """The router for this pass and the state machine's plan."""

    plan: Plan
    router: TrafficRouter
    router_problem: RouterUnavailableError | None


def manifest_hash(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:16]


def with_applied_hash(manifest: dict[str, Any]) -> dict[str, Any]:
    annotations = dict(manifest["metadata"].get("annotations", {}))
    annotations[APPLIED_HASH] = manifest_hash(manifest)
    return {**manifest, "metadata": {**manifest["metadata"], "annotations": annotations}}


def replicas_handover(
    desired: dict[str, Any], live: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The apply that must precede `desired` when it stops setting a Deployment's replicas
    (an autoscaler takes over): without it, server-side apply would remove the field our
    manager owned and the Deployment would fall to its default of one replica. Kubernetes'
    documented hand-over: another manager applies the current count first, so the field stays."""
    if desired["kind"] != "Deployment" or live is None or "replicas" in desired.get("spec", {}):
        return None
    owned = any(
        entry.get("manager") == FIELD_MANAGER
        and entry.get("operation") == "Apply"
        and "f:replicas" in entry.get("fieldsV1", {}).get("f:spec", {})
        for entry in live["metadata"].get("managedFields", [])
    )
    if not owned or "replicas" not in live.get("spec", {}):
        return None
    meta = live["metadata"]
    return {
        "apiVersion": live.get("apiVersion", desired["apiVersion"]),
        "kind": "Deployment",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"replicas": live["spec"]["replicas"]},
    }


def pod_images(manifests: list[dict[str, Any]]) -> set[str]:
    """Every container image the manifests' pod templates run (init containers included)."""
    images: set[str] = set()
    for manifest in manifests:
        pod = manifest.get("spec", {}).get("template", {}).get("spec", {})
        for container in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            images.add(container["image"])
    return images


def needs_apply(desired: dict[str, Any], live: dict[str, Any] | None) -> bool:
    if live is None:
        return True
    if (
        live.get("metadata", {}).get("annotations", {}).get(APPLIED_HASH)
        != (desired["metadata"]["annotations"][APPLIED_HASH])
    ):
        return True
    return not is_subset(desired, live)


class Reconciler:
    def __init__(
        self,
        client: KubeClient,
        view: ClusterView,
        queue: WorkQueue[Key],
        settings: OperatorSettings,
    ) -> None:
        self.client = client
        self.view = view
        self.queue = queue
        self.settings = settings
        self.context = BuildContext(server_image=settings.server_image)
        self.available_kinds: set[str] = {
            child.kind for child in kinds.CHILD_KINDS if child not in kinds.OPTIONAL_KINDS
        }
        self._rolling_out: set[Key] = set()
        self._http: aiohttp.ClientSession | None = None
        self._exported: dict[Key, set[str]] = {}
        # Versions out of traffic whose children wait for scaleDownDelay: their deadlines
        # (monotonic). In memory: a restarted operator waits the full delay again (safe side).
        self._retiring: dict[Key, dict[str, float]] = {}
        # Consecutive failed passes per key, for the retry backoff.
        self._failures: dict[Key, int] = {}
        self.registries = RegistryPoller(self._http_session, self._read_secret)

    async def discover_optional_kinds(self) -> bool:
        """Which optional CRDs are served now; True when that changed."""
        before = set(self.available_kinds)
        for optional in kinds.OPTIONAL_KINDS:
            if await self.client.exists(optional):
                self.available_kinds.add(optional.kind)
            else:
                self.available_kinds.discard(optional.kind)
        if self.available_kinds != before:
            log.info("child kinds available: %s", ", ".join(sorted(self.available_kinds)))
            return True
        return False

    def _retry(self, key: Key) -> float:
        """Schedule the next attempt after a failed pass; its delay."""
        failures = self._failures.get(key, 0)
        delay = min(RETRY_SECONDS * 2.0**failures, MAX_RETRY_SECONDS)
        if delay < MAX_RETRY_SECONDS:  # past the cap the count has nothing more to say
            self._failures[key] = failures + 1
        self.queue.add_after(key, delay)
        return delay

    def watched_kinds(self) -> list[Kind]:
        return [child for child in kinds.CHILD_KINDS if child.kind in self.available_kinds]

    async def reconcile(self, key: Key) -> None:
        body = self.view.models.get(key)
        if body is None or body["metadata"].get("deletionTimestamp"):
            # Deleted: ownerReferences let the garbage collector remove every child.
            self._rolling_out.discard(key)
            self.forget(key)
            ROLLOUTS_IN_PROGRESS.set(len(self._rolling_out))
            return
        started = time.perf_counter()
        try:
            requeue = await self._reconcile(key, body)
        except ChildrenNotApplied as problem:
            RECONCILES.labels(result="error").inc()
            RECONCILE_ERRORS.labels(error=problem.reason).inc()
            delay = self._retry(key)
            log.warning("%s/%s: %s; retrying in %ss", *key, problem, delay)
            await self._report_problem(key, body, problem)
            return
        except ApiError as err:
            RECONCILES.labels(result="error").inc()
            RECONCILE_ERRORS.labels(error=f"api-{err.status}").inc()
            if err.status == 404:
                # A CRD this pass relied on was removed (Prometheus Operator or Gateway API
                # uninstalled): look again so the retry no longer writes that kind.
                await self.discover_optional_kinds()
            delay = self._retry(key)
            if err.status == 409:
                log.info("%s/%s: conflict (%s); retrying", *key, err.message)
            else:
                log.warning("%s/%s: %s; retrying in %ss", *key, err, delay)
            return
        except Exception:
            RECONCILES.labels(result="error").inc()
            RECONCILE_ERRORS.labels(error="internal").inc()
            delay = self._retry(key)
            log.exception("%s/%s: reconcile failed; retrying in %ss", *key, delay)
            return
        finally:
            RECONCILE_DURATION.observe(time.perf_counter() - started)
        self._failures.pop(key, None)
        RECONCILES.labels(result="requeued" if requeue else "ok").inc()
        if requeue is not None:
            self.queue.add_after(key, requeue)

    async def _reconcile(self, key: Key, body: dict[str, Any]) -> float | None:
        """One pass: observe → plan → desire → apply → report. The seconds until the next pass
        is due by itself (a rollout step, a retirement), if any."""
        try:
            md = ModelDeployment.model_validate(body)
        except ValidationError as err:
            # Admission validates the same schema; this only happens with a stale CRD installed.
            await self.client.post_event(body, "InvalidSpec", str(err), warning=True)
            return None
        following: Following | None = None
        poll_in: float | None = None
        if md.spec.model.source is not None:
            answer, poll_in = await self.registries.answer(key, md)
            following = choose_pin(md, answer, datetime.now(UTC))
            if following.pin is None:
                # Nothing resolved yet: nothing to create, and nothing is ever torn down here.
                await self._report_unpinned(key, md, body, following)
                return poll_in
            md = pinned_deployment(md, following.pin)
        observed = self._observe(key, md)
        decision = await self._plan(md, body, observed)
        desired = desired_state(
            md, decision.plan, decision.router, self._capabilities(), self.context
        )
        refused = [
            f"image {image} is not allowed by this operator (allowed image prefixes: "
            f"{', '.join(self.settings.allowed_image_prefixes)}): nothing applied"
            for image in sorted(pod_images(desired.children))
            if not self.settings.allows_image(image)
        ]
        if refused:
            raise ChildrenNotApplied(IMAGE_NOT_ALLOWED, refused)
        retire_in = await self._apply(key, md, decision.plan, observed.children, desired)
        await self._report(key, md, body, observed, decision, desired, following)
        due = [t for t in (decision.plan.requeue_after, retire_in, poll_in) if t is not None]
        return min(due) if due else None

    def _observe(self, key: Key, md: ModelDeployment) -> Observation:
        """The children and pods the view holds, and each version's health."""
        children = self.view.children_of(key)
        # A child the watches delivered proves its kind is served, whatever discovery said at
        # startup: never treat it as unavailable (that would delete it, and fight any other
        # replica that knows better).
        self.available_kinds |= {kind for kind, _ in children}
        health = _version_health(md, children, self.view.pods_of(key))
        return Observation(children, health, datetime.now(UTC))

    async def _plan(
        self, md: ModelDeployment, body: dict[str, Any], observed: Observation
    ) -> Decision:
        """The router, then the rollout state machine; analysis runs when the plan asks."""
        router, router_problem = self._router(md)
        routing = Routing(
            split_by_service=router.name == TrafficRouterKind.REPLICA_RATIO,
            canary_replicas=router.canary_replicas,
        )
        pending = pending_request(body, md)
        request = pending.actionable if pending is not None else None
        health, now = observed.health, observed.time
        plan = plan_tracks(md, health, now, routing, request=request)
        if plan.analysis_due:
            verdict = await self._analyse(md, plan, now)
            plan = plan_tracks(md, health, now, routing, analysis=verdict, request=request)
        if pending is not None and pending.stale:
            plan = replace(plan, request_id=pending.request_id)
        return Decision(plan, router, router_problem)

    def _capabilities(self) -> Capabilities:
        return Capabilities(
            served_kinds=frozenset(self.available_kinds),
            prometheus_url=self.settings.prometheus_url,
            monitoring_labels=self.settings.service_monitor_labels,
        )

    async def _apply(
        self,
        key: Key,
        md: ModelDeployment,
        plan: Plan,
        children: dict[tuple[str, str], dict[str, Any]],
        desired: DesiredState,
    ) -> float | None:
        """Apply what differs, then delete what is no longer wanted (see `_delete_unwanted`)."""
        manifests = [with_applied_hash(m) for m in desired.children]
        wanted = {(m["kind"], m["metadata"]["name"]) for m in manifests}
        copies = await asyncio.gather(*(self._live_copy(md, m, children) for m in manifests))
        live = list(zip(manifests, copies, strict=True))
        # Never take over what we do not control (a user's Service of the same name, another
        # ModelDeployment's child): a forced apply would overwrite it, add our owner reference,
        # and the garbage collector would delete it with this ModelDeployment. Nothing of this
        # pass is applied then: a partial set of children could shift traffic or capacity.
        live = await self._confirm_foreign(key, md, live)
        foreign = [(m, body) for m, body in live if body is not None and not owned_by(body, md)]
        if foreign:
            raise ChildrenNotApplied(CHILD_CONFLICT, [_conflict(m, body) for m, body in foreign])
        stale = [(m, held) for m, held in live if needs_apply(m, held)]
        try:
            for m, held in stale:
                if (handover := replicas_handover(m, held)) is not None:
                    handing = self.client.apply(handover, field_manager=HANDOVER_FIELD_MANAGER)
                    await _applied(m, handing)
        except ApplyRefused as refusal:
            raise ChildrenNotApplied(APPLY_FAILED, [str(refusal)]) from refusal
        changed = [m for m, _ in stale]
        # Children are independent objects: apply them concurrently. Deletions wait until every
        # apply succeeded, so traffic never loses its new target before the old one goes.
        answers = await asyncio.gather(
            *(_applied(m, self.client.apply(m)) for m in changed), return_exceptions=True
        )
        refused: list[str] = []
        for answer in answers:
            if isinstance(answer, ApplyRefused):
                refused.append(str(answer))
            elif isinstance(answer, BaseException):
                raise answer
            elif answer is not None:
                # Kept for the next pass, so it does not apply again before the watch echoes
                # this write -- unless the watch already delivered something newer while the
                # other applies were in flight (a Deployment's ready status): not undone.
                self.view.remember_child(key, answer)
        if refused:
            raise ChildrenNotApplied(APPLY_FAILED, refused)
        return await self._delete_unwanted(key, md, plan, children, wanted)

    async def _live_copy(
        self,
        md: ModelDeployment,
        manifest: dict[str, Any],
        children: dict[tuple[str, str], dict[str, Any]],
    ) -> dict[str, Any] | None:
        """The object of this kind and name as it exists, if it does. The view holds only
        objects with our labels: one made by someone else is invisible to it, so a child the
        view lacks (about to be created) is looked up in the API; listed by name, since the
        operator is granted list, not get."""
        held = children.get((manifest["kind"], manifest["metadata"]["name"]))
        if held is not None:
            return held
        return await self._api_copy(md, manifest)

    async def _api_copy(
        self, md: ModelDeployment, manifest: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The object as the API holds it now; listed by name (list is granted, get is not)."""
        name = manifest["metadata"]["name"]
        found = await self.client.list(
            kind_of(manifest), md.metadata.namespace, field_selector=f"metadata.name={name}"
        )
        return found[0] if found else None

    async def _confirm_foreign(
        self,
        key: Key,
        md: ModelDeployment,
        live: list[tuple[dict[str, Any], dict[str, Any] | None]],
    ) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
        """`live` with every copy that is not ours re-read from the API. The view can hold a
        ghost: the answer to a write, stored after the watch reported the object deleted (a
        namespace deleted and made again mid-pass). Only what the API still holds is a
        conflict; a ghost is dropped from the view. Rare, so the extra reads cost nothing at
        steady state."""
        suspects = [
            i for i, (_, body) in enumerate(live) if body is not None and not owned_by(body, md)
        ]
        if not suspects:
            return live
        current = await asyncio.gather(*(self._api_copy(md, live[i][0]) for i in suspects))
        confirmed = list(live)
        for i, body in zip(suspects, current, strict=True):
            manifest = live[i][0]
            if body is None:
                self.view.forget_child(key, (manifest["kind"], manifest["metadata"]["name"]))
            confirmed[i] = (manifest, body)
        return confirmed

    async def _delete_unwanted(
        self,
        key: Key,
        md: ModelDeployment,
        plan: Plan,
        children: dict[tuple[str, str], dict[str, Any]],
        wanted: set[tuple[str, str]],
    ) -> float | None:
        """Delete the children no longer wanted. A version that has just stopped receiving
        traffic (the old stable after promotion, a rolled-back canary) keeps its children for
        spec.rollout.scaleDownDelay first: gateways and kube-proxy move requests off it only as
        fast as they learn of the change. The seconds until the next retirement, if any."""
        live_versions = {track.version for track in plan.tracks}
        delay = parse_duration(md.spec.rollout.scale_down_delay)
        now = time.monotonic()
        held = self._retiring.get(key, {})
        retiring: dict[str, float] = {}
        for (kind, name), live in children.items():
            if (kind, name) in wanted or not owned_by(live, md):
                continue
            version = live["metadata"].get("labels", {}).get(naming.LABEL_VERSION)
            if version is not None and version not in live_versions:
                due = held.get(version, now + delay)
                if now < due:
                    retiring[version] = due
                    continue
            await self.client.delete(kind_of(live), md.metadata.namespace, name)
            self.view.forget_child(key, (kind, name))
        if retiring:
            self._retiring[key] = retiring
        else:
            self._retiring.pop(key, None)
        return min(retiring.values()) - now if retiring else None

    async def _report_unpinned(
        self, key: Key, md: ModelDeployment, body: dict[str, Any], following: Following
    ) -> None:
        """The status of a followed source with nothing pinned yet: Pending, the conditions
        saying why, status.resolved and rejected as they are."""
        report = after_plan(md, following, None, datetime.now(UTC))
        current = body.get("status") or {}
        change = partial_status(
            md.metadata.generation, time.time(), current, "Pending", report.conditions,
            report.status,
        )  # fmt: skip
        await self._write_status(md, body, change.status)
        await asyncio.gather(
            *(self.client.post_event(body, e.reason, e.message, e.warning) for e in change.events)
        )

    def _router(self, md: ModelDeployment) -> tuple[TrafficRouter, RouterUnavailableError | None]:
        try:
            return select_router(md, "HTTPRoute" in self.available_kinds), None
        except RouterUnavailableError as err:
            # Keep serving through the model Service alone and say why in Degraded.
            return ReplicaRatioRouter(), err

    def _export_rollout_metrics(
        self, md: ModelDeployment, plan: Plan, rejected_version: str | None
    ) -> None:
        """Gauges the alert rules and the dashboard read (see docs/monitoring.md).
        `rejected_version`: a followed registry points at a version rolled back before."""
        key = (md.metadata.namespace, md.metadata.name)
        version = plan.target.model.version
        for old in self._exported.pop(key, ()):
            forget_rollout_series(*key, old)
        if plan.rollout.failed_serving_hash == plan.target.fingerprint():
            ROLLED_BACK.labels(namespace=key[0], name=key[1], version=version).set(1)
        if rejected_version is not None:
            ROLLED_BACK.labels(namespace=key[0], name=key[1], version=rejected_version).set(1)
        if plan.rollout.canary is not None:
            CANARY_WEIGHT.labels(namespace=key[0], name=key[1], version=version).set(
                plan.rollout.weight or 0
            )
        self._exported[key] = {version, *([rejected_version] if rejected_version else [])}

    def forget(self, key: Key) -> None:
        self._retiring.pop(key, None)
        self.registries.forget(key)
        self._failures.pop(key, None)
        for old in self._exported.pop(key, ()):
            forget_rollout_series(*key, old)

    async def _analyse(
        self, md: ModelDeployment, plan: Plan, now: datetime
    ) -> tuple[Outcome, AnalysisResult] | AnalysisUnavailable:
        spec = md.spec.rollout.analysis
        assert spec is not None and plan.stable is not None
        step = plan.rollout.step or 0
        try:
            return await run_analysis(
                self._http_session(),
                spec.prometheus_url or self.settings.prometheus_url,
                spec,
                md.metadata.namespace,
                md.metadata.name,
                plan.target.model.version,
                plan.stable.model.version,
                step,
                now,
                default_window=md.spec.rollout.step_interval,
            )
        except (AnalysisError, aiohttp.ClientError, TimeoutError) as err:
            # No verdict on the canary, neither a pass nor a failed check: the plan holds the
            # step and says why, until Prometheus answers or the progress deadline passes.
            ANALYSIS_UNANSWERED.inc()
            log.warning("%s/%s: analysis held: %s", md.metadata.namespace, md.metadata.name, err)
            return AnalysisUnavailable(str(err) or type(err).__name__)

    async def _read_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A Secret a followed source names: read when its registry is polled, not watched (the
        operator may read Secrets, not list them)."""
        return await self.client.get(kinds.SECRET, namespace, name)

    def _http_session(self) -> aiohttp.ClientSession:
        """One session for Prometheus and the registries the operator asks."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def _report(
        self,
        key: Key,
        md: ModelDeployment,
        body: dict[str, Any],
        observed: Observation,
        decision: Decision,
        desired: DesiredState,
        following: Following | None,
    ) -> None:
        """Status (patched only when it changed), Events, and the rollout gauges."""
        plan = decision.plan
        registry = after_plan(md, following, plan, observed.time) if following is not None else None
        change = compute_status(
            md, plan, observed.health, time.time(), body.get("status") or {},
            decision.router_problem, desired.monitoring, desired.scale_to_zero,
            registry.conditions if registry is not None else (),
        )  # fmt: skip
        status = change.status | (registry.status if registry is not None else NOT_FOLLOWING)
        events = [*change.events, *(registry.events if registry is not None else [])]
        self._export_rollout_metrics(md, plan, registry.rejected_version if registry else None)
        await self._write_status(md, body, status)
        await asyncio.gather(
            *(self.client.post_event(body, e.reason, e.message, e.warning) for e in events)
        )
        if plan.in_progress:
            self._rolling_out.add(key)
        else:
            self._rolling_out.discard(key)
        ROLLOUTS_IN_PROGRESS.set(len(self._rolling_out))

    async def _write_status(
        self, md: ModelDeployment, body: dict[str, Any], status: dict[str, Any]
    ) -> None:
        """Patch the status when it changed, and keep the answer in `body`."""
        current = body.get("status") or {}
        # Compare only the keys the operator owns; None means "remove" in a merge patch.
        if any(current.get(k) != v for k, v in status.items()):
            patched = await self.client.patch_status(
                kinds.MODEL_DEPLOYMENT, md.metadata.namespace, md.metadata.name, status
            )
            if patched is not None:
                # Take the resourceVersion too: watch events older than this write are then
                # recognised as stale (view.is_older) instead of undoing the new status.
                body["status"] = patched.get("status", status)
                body["metadata"]["resourceVersion"] = patched["metadata"]["resourceVersion"]

    async def _report_problem(
        self, key: Key, body: dict[str, Any], problem: ChildrenNotApplied
    ) -> None:
        """Degraded with the problem, patched only when it changed, and an Event with it."""
        current = body.get("status") or {}
        generation = body["metadata"].get("generation")
        change = problem_status(generation, time.time(), current, problem.reason, problem.message)
        try:
            if any(current.get(k) != v for k, v in change.status.items()):
                patched = await self.client.patch_status(
                    kinds.MODEL_DEPLOYMENT, *key, change.status
                )
                if patched is not None:
                    body["status"] = {**current, **patched.get("status", change.status)}
                    body["metadata"]["resourceVersion"] = patched["metadata"]["resourceVersion"]
            await asyncio.gather(
                *(
                    self.client.post_event(body, e.reason, e.message, e.warning)
                    for e in change.events
                )
            )
        except ApiError as err:
            log.warning("%s/%s: could not report %s: %s", *key, problem.reason, err)


async def _applied(
    manifest: dict[str, Any], apply: Awaitable[dict[str, Any] | None]
) -> dict[str, Any] | None:
    """The answer to one apply; the API's refusal of it as ApplyRefused."""
    try:
        return await apply
    except ApiError as err:
        if err.status in TRANSIENT_APPLY_ERRORS:
            raise
        raise ApplyRefused(f"{manifest['kind']} {manifest['metadata']['name']}: {err}") from err


def _conflict(manifest: dict[str, Any], existing: dict[str, Any]) -> str:
    controller = next(
        (ref for ref in existing["metadata"].get("ownerReferences", []) if ref.get("controller")),
        None,
    )
    if controller is None:
        held = "has no controller"
    else:
        held = f"is controlled by {controller.get('kind')} {controller.get('name')}"
    return (
        f"{manifest['kind']} {manifest['metadata']['name']} already exists and {held}, not this "
        "ModelDeployment: left alone; delete or rename it for the operator to create its own"
    )


def owned_by(body: dict[str, Any], md: ModelDeployment) -> bool:
    return any(
        ref.get("uid") == md.metadata.uid for ref in body["metadata"].get("ownerReferences", [])
    )


def _version_health(
    md: ModelDeployment,
    children: dict[tuple[str, str], dict[str, Any]],
    pods: list[dict[str, Any]],
) -> dict[str, DeploymentHealth]:
    """Health of each version's Deployment, keyed by version."""
    health: dict[str, DeploymentHealth] = {}
    for (kind, _), body in children.items():
        if kind != kinds.DEPLOYMENT.kind or not owned_by(body, md):
            continue
        version = body["metadata"].get("labels", {}).get(naming.LABEL_VERSION)
        if version is None:
            continue
        own_pods = [p for p in pods if p["metadata"]["labels"].get(naming.LABEL_VERSION) == version]
        health[version] = deployment_health(body, own_pods)
    return health
