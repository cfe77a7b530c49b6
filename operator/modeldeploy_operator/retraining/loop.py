"""The retraining loop: observe, plan (`policy`, `machine`), apply. The only impure part.

Every `PASS_SECONDS` it lists the RetrainingPolicies, RetrainingRuns, their Jobs and pods and the
targeted ModelDeployments in scope, reads each policy's trigger from Prometheus and each run's
registry state from MLflow, and applies what the plans say: runs and Jobs by server-side apply
(field manager `modeldeploy`, owned by their policy and run), the alias move in MLflow, status
merge patches only when the status changed, Events. Polling rather than watches: a run's steps
take minutes, and everything the loop needs survives a restart in the objects' status.
Alertmanager's notifications (`receiver`) are handed to the next pass, which starts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import aiohttp
from modeldeploy_serving.contract import RETRAINING_RUN_TAG
from pydantic import ValidationError

from modeldeploy_operator import kinds, naming
from modeldeploy_operator.api import MlflowFollow, MlflowSource, ModelDeployment
from modeldeploy_operator.api.retraining import RetrainingPolicy, RetrainingRun
from modeldeploy_operator.kube import UNREACHABLE, ApiError, KubeClient
from modeldeploy_operator.monitoring import metrics as m
from modeldeploy_operator.registry.credentials import CredentialsUnavailable, read_credentials
from modeldeploy_operator.registry.mlflow import (
    AccessDenied,
    MlflowClient,
    ReferenceNotFound,
    RegistryUnreachable,
)
from modeldeploy_operator.retraining.alerts import Alert
from modeldeploy_operator.retraining.jobs import (
    EVALUATOR_CONTAINER,
    LABEL_RUN,
    evaluation_job_name,
    training_job_name,
)
from modeldeploy_operator.retraining.machine import (
    JobObservation,
    JobState,
    RegistryLookup,
    RunObservation,
    TargetObservation,
    plan_run,
)
from modeldeploy_operator.retraining.policy import TriggerReading, plan_policy
from modeldeploy_operator.retraining.receiver import NotActedOn, NotLeading
from modeldeploy_operator.rollout.analysis.prometheus import AnalysisError, query_vector
from modeldeploy_operator.rollout.plan import Event
from modeldeploy_operator.settings import OperatorSettings
from modeldeploy_operator.telemetry import RETRAINING_RUNS

log = logging.getLogger("modeldeploy.retraining")

PASS_SECONDS: Final = 5.0
# How long a notification waits for the pass that acts on it before the receiver answers 503
# (Alertmanager then retries).
DELIVERY_TIMEOUT_SECONDS: Final = 30.0
LABEL_POLICY: Final = "modeldeploy.dev/retraining-policy"

Manifest = dict[str, Any]
Key = tuple[str, str]


def default_query(namespace: str, model: str) -> str:
    """The largest input-drift PSI of any feature on any of the model's pods."""
    return f"max({m.selector(m.FEATURE_DRIFT, m.model_scope(namespace, model))})"


def job_observation(job: Manifest | None, pods: list[Manifest]) -> JobObservation:
    """A Job's outcome (its Complete or Failed condition) and, once a pod has ended, the first
    container's termination message (the evaluator's result)."""
    if job is None:
        return JobObservation()
    output = None
    for pod in pods:
        for container in pod.get("status", {}).get("containerStatuses", []):
            terminated = container.get("state", {}).get("terminated")
            if container.get("name") == EVALUATOR_CONTAINER and terminated:
                output = terminated.get("message")
    for condition in job.get("status", {}).get("conditions", []):
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobObservation(JobState.SUCCEEDED, output=output)
        if condition.get("type") == "Failed":
            message = f"{condition.get('reason', '')}: {condition.get('message', '')}".strip(": ")
            return JobObservation(JobState.FAILED, message, output)
    return JobObservation(JobState.RUNNING)


def _dump(model: Any) -> Manifest:
    dumped: Manifest = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


class RetrainingLoop:
    def __init__(self, client: KubeClient, settings: OperatorSettings) -> None:
        self._client = client
        self._settings = settings
        self._http: aiohttp.ClientSession | None = None
        self._active: asyncio.Event | None = None
        # Alerts delivered since the last pass, each batch with the receiver waiting on it.
        self._inbox: list[tuple[list[Alert], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()

    def _session(self) -> aiohttp.ClientSession:
        """One session for Prometheus and the registries, made inside the running loop."""
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._http

    async def run(self, active: asyncio.Event) -> None:
        """Forever: one pass every PASS_SECONDS while this replica leads, or at once when alerts
        arrive. A pass that fails (the apiserver away) is logged and tried again: the task must
        live on; the alerts it carried are answered 503, so Alertmanager sends them again."""
        self._active = active
        try:
            while True:
                await active.wait()
                batch, self._inbox = self._inbox, []
                alerts = [alert for delivered, _ in batch for alert in delivered]
                try:
                    complete = await self.pass_once(alerts)
                except (ApiError, *UNREACHABLE) as err:
                    log.warning("retraining pass failed: %r", err)
                    _settle(batch, err)
                except BaseException as err:
                    _settle(batch, err)
                    raise
                else:
                    _settle(batch, None if complete else NotActedOn("a policy was not written"))
                # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a
                # cancellation that meets the event being set, and the task would not end.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(PASS_SECONDS):
                        await self._wake.wait()
                self._wake.clear()
        finally:
            await self.close()

    async def deliver(self, alerts: list[Alert]) -> None:
        """Hand Alertmanager's alerts to the next pass (started now) and wait until it acted on
        them. NotLeading on a standby: only the leader creates runs."""
        if self._active is None or not self._active.is_set():
            raise NotLeading
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox.append((alerts, done))
        self._wake.set()
        async with asyncio.timeout(DELIVERY_TIMEOUT_SECONDS):
            await done

    async def _read_secret(self, namespace: str, name: str) -> Manifest | None:
        return await self._client.get(kinds.SECRET, namespace, name)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _wanted(self, body: Manifest) -> bool:
        patterns = self._settings.namespaces
        namespace = body["metadata"].get("namespace", "")
        return not patterns or any(fnmatch.fnmatchcase(namespace, p) for p in patterns)

    async def _list(self, kind: kinds.Kind, selector: str | None = None) -> list[Manifest]:
        items: list[Manifest] = []
        for scope in self._settings.list_scopes:
            items += await self._client.list(kind, scope, selector)
        return [item for item in items if self._wanted(item)]

    async def pass_once(self, alerts: list[Alert] | None = None) -> bool:
        """One pass; False when a policy's plan could not be written (its alerts not acted on)."""
        policies = await self._list(kinds.RETRAINING_POLICY)
        if not policies:
            return True
        runs = await self._list(kinds.RETRAINING_RUN)
        jobs = {_key(job): job for job in await self._list(kinds.JOB, LABEL_RUN)}
        pods = await self._list(kinds.POD, LABEL_RUN)
        models = {_key(md): md for md in await self._list(kinds.MODEL_DEPLOYMENT)}
        by_policy: dict[Key, list[RetrainingRun]] = {}
        for body in runs:
            parsed = _parse_run(body)
            if parsed is None:
                continue
            by_policy.setdefault((parsed.metadata.namespace, parsed.spec.policy), []).append(parsed)
            try:
                await self._run_pass(parsed, body, jobs, pods, models)
            except ApiError as err:
                # One object the apiserver refused must not stop the others' passes.
                log.warning("%s/%s: %s", *_key(body), err)
        complete = True
        for body in policies:
            try:
                await self._policy_pass(body, by_policy, models, alerts or [])
            except ApiError as err:
                log.warning("%s/%s: %s", *_key(body), err)
                complete = False
        return complete

    # -- runs ---------------------------------------------------------------------------------

    async def _run_pass(
        self,
        run: RetrainingRun,
        body: Manifest,
        jobs: Mapping[Key, Manifest],
        pods: list[Manifest],
        models: Mapping[Key, Manifest],
    ) -> None:
        if run.status.phase is not None and run.status.phase.finished:
            return
        namespace, name = run.metadata.namespace, run.metadata.name
        # Without its credentials the registry is not asked: the run holds and says why.
        unreadable: str | None = None
        try:
            credentials = await read_credentials(
                self._read_secret, namespace, run.spec.registry.credentials_secret_ref
            )
        except CredentialsUnavailable as err:
            credentials, unreadable = None, str(err)
        registry = MlflowClient(
            self._session(),
            MlflowSource(
                tracking_uri=run.spec.registry.tracking_uri,
                registered_model=run.spec.registry.registered_model,
                follow=MlflowFollow(alias=run.spec.registry.alias),
            ),
            credentials,
        )
        training = job_observation(jobs.get((namespace, training_job_name(name))), [])
        evaluation = jobs.get((namespace, evaluation_job_name(name)))
        evaluation_pods = [
            pod for pod in pods
            if _key(pod)[0] == namespace
            and pod["metadata"].get("labels", {}).get("job-name") == evaluation_job_name(name)
        ]  # fmt: skip
        # The registry is asked only what this phase needs: the champion once, at the start;
        # the candidate once the trainer has succeeded.
        champion = RegistryLookup()
        if run.status.phase is None:
            champion = (
                RegistryLookup(error=unreadable)
                if unreadable
                else await _lookup(registry.alias_version(run.spec.registry.alias))
            )
        candidate = RegistryLookup()
        if training.state == JobState.SUCCEEDED:
            candidate = (
                RegistryLookup(error=unreadable)
                if unreadable
                else await _lookup(registry.tagged_version(RETRAINING_RUN_TAG, name))
            )
        seen = RunObservation(
            champion=champion,
            candidate=candidate,
            training=training,
            evaluation=job_observation(evaluation, evaluation_pods),
            target=_target_observation(models.get((namespace, run.spec.target_ref.name))),
        )
        plan = plan_run(run, seen, _now())
        for job in plan.jobs:
            await self._client.apply(job)
        if plan.move_alias_to is not None:
            failed = unreadable
            if failed is None:
                try:
                    await registry.set_alias(run.spec.registry.alias, plan.move_alias_to)
                except (RegistryUnreachable, ReferenceNotFound, AccessDenied) as err:
                    failed = str(err)
            if failed is not None:
                # The gate passed but the alias did not move: stay Evaluating, try next pass.
                held = run.status.model_copy(
                    update={
                        "reason": "RegistryUnreachable",
                        "message": f"moving the alias: {failed}",
                    }
                )
                await self._write_status(kinds.RETRAINING_RUN, body, _dump(held), [])
                return
        await self._write_status(kinds.RETRAINING_RUN, body, _dump(plan.status), plan.events)
        if plan.result is not None:
            RETRAINING_RUNS.labels(plan.result.value).inc()
            log.info("%s/%s finished: %s", namespace, name, plan.result.value)

    # -- policies -----------------------------------------------------------------------------

    async def _policy_pass(
        self,
        body: Manifest,
        runs: Mapping[Key, list[RetrainingRun]],
        models: Mapping[Key, Manifest],
        alerts: list[Alert],
    ) -> None:
        try:
            policy = RetrainingPolicy.model_validate(body)
        except ValidationError as err:
            log.warning("%s: invalid RetrainingPolicy: %s", _key(body), err)
            return
        namespace, name = policy.metadata.namespace, policy.metadata.name
        target_body = models.get((namespace, policy.spec.target_ref.name))
        target = _parse_model(target_body)
        reading = await self._read_trigger(policy)
        plan = plan_policy(
            policy, runs.get((namespace, name), []), target, reading,
            _now(), self._settings.server_image, alerts,
            serves_alerts=self._settings.alertmanager_token_file is not None,
        )  # fmt: skip
        if plan.new_run is not None:
            await self._client.apply(
                {
                    "apiVersion": policy.api_version,
                    "kind": kinds.RETRAINING_RUN.kind,
                    "metadata": {
                        "name": plan.new_run.name,
                        "namespace": namespace,
                        "labels": {
                            naming.LABEL_MANAGED_BY: naming.MANAGER,
                            naming.LABEL_PART_OF: naming.PART_OF,
                            LABEL_POLICY: name,
                        },
                        # The policy's runs go with it; the run does not block its deletion.
                        "ownerReferences": [
                            {
                                "apiVersion": policy.api_version,
                                "kind": policy.kind,
                                "name": name,
                                "uid": policy.metadata.uid,
                            }
                        ],
                    },
                    "spec": _dump(plan.new_run.spec),
                }
            )
        await self._write_status(kinds.RETRAINING_POLICY, body, _dump(plan.status), plan.events)

    async def _read_trigger(self, policy: RetrainingPolicy) -> TriggerReading | None:
        trigger = policy.spec.triggers.metric
        if trigger is None:
            return None
        query = trigger.query or default_query(
            policy.metadata.namespace, policy.spec.target_ref.name
        )
        url = trigger.prometheus_url or self._settings.prometheus_url
        try:
            samples = await query_vector(self._session(), url, query)
        except AnalysisError as err:
            return TriggerReading(query, error=str(err))
        values = [value for _, value in samples if value == value]  # NaN is no data
        return TriggerReading(query, max(values) if values else None)

    # -- writes -------------------------------------------------------------------------------

    async def _write_status(
        self, kind: kinds.Kind, body: Manifest, status: Manifest, events: list[Event]
    ) -> None:
        meta = body["metadata"]
        if status != body.get("status", {}):
            # Keys the new status no longer has are removed (a merge patch keeps absent keys).
            removed = {key: None for key in body.get("status", {}) if key not in status}
            await self._client.patch_status(
                kind, meta["namespace"], meta["name"], {**removed, **status}
            )
        for event in events:
            await self._client.post_event(body, event.reason, event.message, event.warning)


def _settle(
    batch: list[tuple[list[Alert], asyncio.Future[None]]], error: BaseException | None
) -> None:
    """Answer the receivers waiting on a pass (a receiver that gave up is skipped)."""
    for _, done in batch:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        elif isinstance(error, asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(error)


def _now() -> datetime:
    """Whole seconds: a status read back parses to the same value it was written with."""
    return datetime.now(UTC).replace(microsecond=0)


async def _lookup(asking: Coroutine[Any, Any, str | None]) -> RegistryLookup:
    try:
        return RegistryLookup(await asking)
    except ReferenceNotFound:
        return RegistryLookup(None)
    except (RegistryUnreachable, AccessDenied) as err:
        return RegistryLookup(error=str(err))


def _key(body: Manifest) -> Key:
    meta = body["metadata"]
    return meta.get("namespace", ""), meta["name"]


def _parse_run(body: Manifest) -> RetrainingRun | None:
    try:
        return RetrainingRun.model_validate(body)
    except ValidationError as err:
        log.warning("%s: unreadable RetrainingRun: %s", _key(body), err)
        return None


def _parse_model(body: Manifest | None) -> ModelDeployment | None:
    if body is None:
        return None
    try:
        return ModelDeployment.model_validate(body)
    except ValidationError:
        return None


def _target_observation(body: Manifest | None) -> TargetObservation:
    md = _parse_model(body)
    if md is None:
        return TargetObservation()
    return TargetObservation(
        stable_version=md.status.stable_version,
        canary_version=md.status.canary_version,
        rejected_versions=frozenset(r.version for r in md.status.rejected or []),
    )
