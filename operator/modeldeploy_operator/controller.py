"""The controller: watches feed an in-memory view of the cluster; a work queue reconciles.

Why not kopf's create/update/resume handlers: they persist progress and a diff base in
annotations (writes on every change) and see only the parent's changes. Here every watch event —
the ModelDeployment's or any child's — just updates the view and queues the owner; one worker
pass then observes, computes the desired children, applies what differs and reports status
(level-triggered, like controller-runtime). Creation, updates, resumption after a restart and a
child edited or deleted by hand all take the same path, and nothing is written when nothing
changed.

kopf watches the kinds every cluster serves; the optional kinds, whose CRDs may be removed and
installed again while the operator runs, are watched by the controller's own `KindWatch`es
(kopf's watch of a removed kind re-raised the 404 and ended the operator). Both feed the view
through the same handlers.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf

from modeldeploy_operator import kinds, naming
from modeldeploy_operator.diffbase import NoDiffBase
from modeldeploy_operator.kinds import Kind
from modeldeploy_operator.kindwatch import (
    REQUEST_RETRY_BACKOFFS,
    WATCH_CONNECT_TIMEOUT_SECONDS,
    WATCH_INACTIVITY_TIMEOUT_SECONDS,
    WATCH_SERVER_TIMEOUT_SECONDS,
    KindWatch,
)
from modeldeploy_operator.kube import UNREACHABLE, ApiError, KubeClient, load_credentials
from modeldeploy_operator.peering import is_active, own_identity
from modeldeploy_operator.reconciler import Reconciler
from modeldeploy_operator.retraining.alerts import Alert
from modeldeploy_operator.retraining.loop import RetrainingLoop
from modeldeploy_operator.retraining.receiver import NotLeading
from modeldeploy_operator.settings import OperatorSettings
from modeldeploy_operator.telemetry import LEADING, MANAGED_OBJECTS, QUEUE_DEPTH
from modeldeploy_operator.view import ClusterView, Key, owner_key
from modeldeploy_operator.workqueue import WorkQueue

log = logging.getLogger("modeldeploy.controller")

STARTUP_ATTEMPTS = 30
PEERING_POLL_SECONDS = 2.0
# While the apiserver does not answer, the peering poll backs off up to this.
PEERING_MAX_BACKOFF_SECONDS = 30.0

# The children whose CRDs may come and go while the operator runs: watched by KindWatch (see
# kindwatch.py), the other children by kopf.
OWN_WATCHED_KINDS = tuple(child for child in kinds.CHILD_KINDS if child in kinds.OPTIONAL_KINDS)
KOPF_WATCHED_CHILDREN = tuple(
    child for child in kinds.CHILD_KINDS if child not in kinds.OPTIONAL_KINDS
)
# Children and pods are listed and watched by the label every one of ours carries, selected by
# the apiserver: kopf's `labels=` filter would receive every Pod, Deployment, Service... in scope
# and drop the others only after keeping its per-object state for each.
SELECTED_KINDS = (*KOPF_WATCHED_CHILDREN, kinds.POD)

# After the CRD of a watched kind changed its spec, the view is re-listed once the watches have
# resumed: the apiserver ends the watches the old storage served, answers 429 until the new one
# has listed (about a second) and 410 Gone to the old version, so kopf resumes them with a
# re-list, which adds and updates but never deletes: a model deleted in between would otherwise
# stay in the view until the next resync.
STORAGE_REPLACED_RELIST_DELAY = 5.0
# The CRDs whose spec changes replace the storage of a kind the operator watches.
WATCHED_CRDS = frozenset(
    f"{kind.plural}.{kind.group}" for kind in (kinds.MODEL_DEPLOYMENT, *kinds.OPTIONAL_KINDS)
)


def peering_poll_delay(failures: int) -> float:
    """Seconds until the next look at the peering object after `failures` failed ones in a row:
    the usual poll, doubled per failure while the apiserver does not answer, capped."""
    return min(PEERING_POLL_SECONDS * 2.0 ** min(failures, 16), PEERING_MAX_BACKOFF_SECONDS)


class Controller:
    def __init__(self, settings: OperatorSettings) -> None:
        self.settings = settings
        self.view = ClusterView()
        self.queue: WorkQueue[Key] = WorkQueue()
        self.registry = kopf.OperatorRegistry()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: KubeClient | None = None
        self._reconciler: Reconciler | None = None
        self._retraining: RetrainingLoop | None = None
        self._started = False
        # One rediscovery at a time; an event during it asks for one more round.
        self._rediscovery: asyncio.Task[None] | None = None
        self._look_again = False
        # Re-lists after a watched CRD's storage was replaced (see STORAGE_REPLACED_RELIST_DELAY).
        self._storage_relists: set[asyncio.Task[None]] = set()
        self._crd_generations: dict[str, int] = {}
        # The optional kinds' watches, per scope; started once the view is primed.
        self.watches: list[KindWatch] = []
        self.identity = own_identity()
        # Set while this replica may reconcile: always when standalone, else per peering.
        self._active = asyncio.Event()
        if settings.peering is None:
            self._active.set()
        LEADING.set(self._active.is_set())
        self._register()

    def kopf_settings(self) -> kopf.OperatorSettings:
        s = kopf.OperatorSettings()
        # Guards against watch streams that silently stop delivering (kopf#1276), as on the
        # controller's own watches (kindwatch.py).
        s.watching.inactivity_timeout = WATCH_INACTIVITY_TIMEOUT_SECONDS
        s.watching.server_timeout = WATCH_SERVER_TIMEOUT_SECONDS
        # A watch the apiserver never ends (its host gone without closing the connection).
        s.watching.client_timeout = WATCH_SERVER_TIMEOUT_SECONDS + WATCH_CONNECT_TIMEOUT_SECONDS
        s.watching.connect_timeout = WATCH_CONNECT_TIMEOUT_SECONDS
        s.networking.error_backoffs = REQUEST_RETRY_BACKOFFS
        s.posting.level = logging.INFO
        s.networking.request_timeout = 60
        s.peering.lifetime = self.settings.peering_lifetime
        # Only on.event handlers here: kopf's per-event copy of every body is never diffed.
        s.persistence.diffbase_storage = NoDiffBase()
        for kind in SELECTED_KINDS:
            s.watching.label_selectors[kind.group, kind.version, kind.plural] = (
                naming.MANAGED_SELECTOR
            )
        return s

    def alive(self) -> bool:
        return bool(self._tasks) and not any(t.done() for t in self._tasks)

    def ready(self) -> bool:
        return self._started and self.alive()

    # -- watches -------------------------------------------------------------------------

    def _register(self) -> None:
        reg = self.registry

        @kopf.on.login(registry=reg)
        def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
            # In a pod the ServiceAccount; elsewhere the current kubeconfig context.
            return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

        @kopf.on.startup(registry=reg)
        async def startup(**_: Any) -> None:
            await self._startup()

        @kopf.on.cleanup(registry=reg)
        async def cleanup(**_: Any) -> None:
            await self._cleanup()

        model = kinds.MODEL_DEPLOYMENT

        @kopf.on.event(model.group, model.version, model.plural, registry=reg)
        async def model_event(event: kopf.RawEvent, **_: Any) -> None:
            body: dict[str, Any] = dict(event["object"])
            key = (body["metadata"]["namespace"], body["metadata"]["name"])
            if event["type"] == "DELETED":
                self.view.forget_model(key)
            elif not self.view.remember_model(body):
                # The reconciler already holds a newer body (the answer to its own status
                # patch); acting on this one would repeat a rollout step.
                return
            self.queue.add(key)
            MANAGED_OBJECTS.labels(kind="ModelDeployment").set(len(self.view.models))

        for child in KOPF_WATCHED_CHILDREN:
            self._register_child(child)

        crd = kinds.CRD

        @kopf.on.event(crd.group, crd.version, crd.plural, registry=reg)
        async def crd_event(event: kopf.RawEvent, **_: Any) -> None:
            # Prometheus Operator, Gateway API or KEDA installed or removed while we run.
            group = event["object"].get("spec", {}).get("group")
            if group in kinds.OPTIONAL_GROUPS and self._started:
                self._rediscover_soon()
            meta = event["object"].get("metadata", {})
            name, generation = meta.get("name", ""), meta.get("generation")
            if event["type"] != "DELETED":
                for watch in self.watches:
                    if watch.kind.crd_name == name:
                        watch.wake()  # waiting for this CRD: look now, not after its backoff
            if name not in WATCHED_CRDS or not isinstance(generation, int):
                return
            previous = self._crd_generations.get(name)
            self._crd_generations[name] = generation
            if previous is not None and generation != previous and self._started:
                task = asyncio.create_task(self._relist_after_storage_replaced(name))
                self._storage_relists.add(task)
                task.add_done_callback(self._storage_relists.discard)

        pod = kinds.POD

        @kopf.on.event(pod.group, pod.version, pod.plural, registry=reg)
        async def pod_event(event: kopf.RawEvent, **_: Any) -> None:
            body: dict[str, Any] = dict(event["object"])
            key = owner_key(body)
            if key is None:
                return
            if event["type"] == "DELETED":
                self.view.forget_pod(key, body["metadata"]["name"])
            elif not self.view.remember_pod(key, body):
                return
            self.queue.add(key)

    def _register_child(self, child: Kind) -> None:
        @kopf.on.event(child.group, child.version, child.plural, registry=self.registry)
        async def child_event(event: kopf.RawEvent, **_: Any) -> None:
            self._child_event(event["type"], dict(event["object"]))

    def _child_event(self, event_type: str | None, body: dict[str, Any]) -> None:
        """A child's watch event, from kopf's watches or the controller's own."""
        key = owner_key(body)
        if key is None:
            return
        if event_type == "DELETED":
            self.view.forget_child(key, (body["kind"], body["metadata"]["name"]))
        elif not self.view.remember_child(key, body):
            return  # the reconciler already holds its own newer write
        self.queue.add(key)

    def _start_watches(self, client: KubeClient) -> None:
        """The optional kinds' watches, one per kind and listing scope (as `_relist` lists)."""
        for kind in OWN_WATCHED_KINDS:
            for scope in self.settings.list_scopes:
                watch = KindWatch(
                    client,
                    kind,
                    scope,
                    naming.MANAGED_SELECTOR,
                    on_listing=self._kind_listed(kind, scope),
                    on_event=lambda event_type, body: (
                        self._child_event(event_type, body) if self._in_scope(body) else None
                    ),
                    on_gone=self._rediscover_soon,
                )
                self.watches.append(watch)
                name = f"watch-{kind.plural}-{scope or 'cluster'}"
                self._tasks.append(asyncio.create_task(watch.run(), name=name))

    def _kind_listed(
        self, kind: Kind, scope: str | None
    ) -> Callable[[list[dict[str, Any]], str], None]:
        def listed(items: list[dict[str, Any]], version: str) -> None:
            wanted = [body for body in items if self._in_scope(body)]
            for key in self.view.replace_kind_from_listing(kind.kind, scope, wanted, version):
                self.queue.add(key)

        return listed

    def _in_scope(self, body: dict[str, Any]) -> bool:
        """Whether a body listed or watched cluster-wide is in a namespace the operator serves
        (patterns such as `team-*` are listed cluster-wide, then filtered)."""
        patterns = self.settings.namespaces
        namespace = body.get("metadata", {}).get("namespace", "")
        return not patterns or any(fnmatch.fnmatchcase(namespace, p) for p in patterns)

    # -- lifecycle -----------------------------------------------------------------------

    async def _startup(self) -> None:
        if self._client is None:
            self._client = KubeClient(load_credentials())
            self._reconciler = Reconciler(self._client, self.view, self.queue, self.settings)
        assert self._reconciler is not None
        # Prime the view before any worker runs: a restarted operator must see the children it
        # made, or it would re-create them (writes) before the watches catch up. A just-created
        # CRD answers 429 while its storage initialises; that is worth a few quick retries.
        for attempt in range(STARTUP_ATTEMPTS):
            try:
                await self._reconciler.discover_optional_kinds()
                await self._relist()
                break
            except ApiError as err:
                if (err.status != 429 and err.status < 500) or attempt == STARTUP_ATTEMPTS - 1:
                    raise
                log.info("apiserver not ready (%s); retrying", err)
                self.view.clear()
                await asyncio.sleep(1)
        for key in list(self.view.models):
            self.queue.add(key)
        self._start_watches(self._client)
        self._tasks.append(asyncio.create_task(self.queue.run_timers(), name="queue-timers"))
        for i in range(self.settings.workers):
            self._tasks.append(
                asyncio.create_task(self.queue.run_worker(self._process), name=f"worker-{i}")
            )
        self._tasks.append(asyncio.create_task(self._resync(), name="resync"))
        self._retraining = RetrainingLoop(self._client, self.settings)
        self._tasks.append(
            asyncio.create_task(self._retraining.run(self._active), name="retraining")
        )
        if self.settings.peering is not None:
            self._tasks.append(asyncio.create_task(self._follow_peering(), name="peering"))
        self._started = True

    async def deliver_alerts(self, alerts: list[Alert]) -> None:
        """Alertmanager's alerts, for the retraining loop (the webhook receiver's Deliver)."""
        if self._retraining is None:
            raise NotLeading
        await self._retraining.deliver(alerts)

    async def _relist(self) -> set[Key]:
        """Make the view agree with the API: list every ModelDeployment, child and pod in scope.
        Run before any worker starts (a restarted operator must see the children it made, or it
        would re-create them) and on every resync, so that an update the watches missed or a
        stale write answer can never stay in the view. The keys whose bodies changed."""
        assert self._client is not None and self._reconciler is not None
        scopes = self.settings.list_scopes
        wanted = self._in_scope

        models: list[dict[str, Any]] = []
        children: list[dict[str, Any]] = []
        pods: list[dict[str, Any]] = []
        versions: list[str] = []

        client = self._client

        async def collect(
            into: list[dict[str, Any]], kind: Kind, scope: str | None, sel: str | None
        ) -> None:
            items, version = await client.list_with_version(kind, scope, sel)
            into.extend(filter(wanted, items))
            versions.append(version)

        for scope in scopes:
            for kind in self._reconciler.watched_kinds():
                await collect(children, kind, scope, naming.MANAGED_SELECTOR)
            await collect(models, kinds.MODEL_DEPLOYMENT, scope, None)
            await collect(pods, kinds.POD, scope, naming.MANAGED_SELECTOR)
        # Objects missing from a listing are dropped unless created after it; with several
        # lists, "after" must mean after the earliest of them.
        numeric = [int(v) for v in versions if v.isdigit()]
        listed_version = str(min(numeric)) if numeric else ""
        changed = self.view.replace_from_listing(models, children, pods, listed_version)
        MANAGED_OBJECTS.labels(kind="ModelDeployment").set(len(self.view.models))
        return changed

    def _rediscover_soon(self) -> None:
        """A CRD of an optional group came or went. An install brings its CRDs together (a
        dozen events at once at operator start): one rediscovery serves the burst."""
        if self._rediscovery is not None and not self._rediscovery.done():
            self._look_again = True
            return
        self._rediscovery = asyncio.create_task(self._rediscover(), name="rediscover")

    async def _rediscover(self) -> None:
        """Discovery trails a CRD's establishment a little: look shortly and once more later."""
        assert self._reconciler is not None
        self._look_again = True
        while self._look_again:
            self._look_again = False
            for delay in (1.0, 5.0):
                await asyncio.sleep(delay)
                try:
                    changed = await self._reconciler.discover_optional_kinds()
                except (ApiError, *UNREACHABLE) as err:
                    log.warning("could not list API resources: %r", err)
                    continue
                if changed:
                    for key in list(self.view.models):
                        self.queue.add(key)

    async def _relist_after_storage_replaced(self, crd: str) -> None:
        """See STORAGE_REPLACED_RELIST_DELAY."""
        await asyncio.sleep(STORAGE_REPLACED_RELIST_DELAY)
        for _ in range(STARTUP_ATTEMPTS):
            try:
                changed = await self._relist()
            except (ApiError, *UNREACHABLE) as err:
                # 429 while the new storage initialises; the resync is the last resort.
                log.info("cannot re-list after %s changed yet: %r", crd, err)
                await asyncio.sleep(1)
                continue
            log.info("re-listed after %s changed: %d models out of date", crd, len(changed))
            for key in changed:
                self.queue.add(key)
            return

    async def _resync(self) -> None:
        """A periodic full pass catches anything a missed event would otherwise leave stale."""
        assert self._reconciler is not None
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            # CRDs installed (or removed) since startup: Prometheus Operator, Gateway API, KEDA.
            # An apiserver that does not answer is tried again next period: the task must live
            # on (its end would fail /healthz and restart the pod over one network error).
            try:
                await self._reconciler.discover_optional_kinds()
            except (ApiError, *UNREACHABLE) as err:
                log.warning("could not list API resources: %r", err)
            # The API, not the view, is the judge: a status update the watches never delivered
            # (or a stale write answer) is repaired here.
            try:
                changed = await self._relist()
            except (ApiError, *UNREACHABLE) as err:
                log.warning("could not re-list the watched objects: %r", err)
                changed = set()
            if changed:
                log.info("re-list found %d models out of date in the view", len(changed))
            for key in [*self.view.models, *changed]:
                self.queue.add(key)

    async def _follow_peering(self) -> None:
        """Reconcile only while kopf's peering says this replica leads (see peering.py)."""
        assert self._client is not None and self.settings.peering is not None
        name = self.settings.peering
        scopes: tuple[str | None, ...] = self.settings.namespaces or (None,)
        kind = kinds.PEERING if self.settings.namespaces else kinds.CLUSTER_PEERING
        failures = 0
        while True:
            try:
                leading = True
                for scope in scopes:
                    objects = await self._client.list(
                        kind, scope, field_selector=f"metadata.name={name}"
                    )
                    peers = objects[0].get("status", {}) if objects else {}
                    now = datetime.now(UTC)
                    leading &= is_active(peers, self.identity, self.settings.peering_priority, now)
                failures = 0
            except (ApiError, *UNREACHABLE) as err:
                # Not knowing who leads, stand by; the task itself must live on (its end would
                # fail /healthz and restart the pod over one network error).
                log.warning("cannot read the peering object %s: %r", name, err)
                leading = False
                failures += 1
            if leading and not self._active.is_set() and await self._caught_up():
                log.info("leading (priority %d): reconciling", self.settings.peering_priority)
                self._active.set()
                LEADING.set(1)
                for key in list(self.view.models):
                    self.queue.add(key)
            elif not leading and self._active.is_set():
                log.info("a peer with a higher priority leads: standing by")
                self._active.clear()
                LEADING.set(0)
            await asyncio.sleep(peering_poll_delay(failures))

    async def _caught_up(self) -> bool:
        """Re-list before leading: kopf closed this replica's watches while it stood by, so a
        model deleted meanwhile is still in the view (kopf's own re-list on resuming adds and
        updates, it never deletes), and a pass for it would re-create children owned by a uid
        that no longer exists. False when the apiserver did not answer: stand by until it does."""
        try:
            await self._relist()
        except (ApiError, *UNREACHABLE) as err:
            log.warning("cannot re-list the watched objects before leading: %r", err)
            return False
        return True

    async def _process(self, key: Key) -> None:
        assert self._reconciler is not None
        await self._active.wait()
        QUEUE_DEPTH.set(len(self.queue))
        await self._reconciler.reconcile(key)

    async def _cleanup(self) -> None:
        # Every task that may still call the API ends before the client closes.
        tasks = [
            *self._tasks,
            *self._storage_relists,
            *([self._rediscovery] if self._rediscovery else []),
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self.watches.clear()
        if self._reconciler is not None:
            await self._reconciler.close()
        if self._client is not None:
            await self._client.close()
