"""The controller's own list-and-watch of one kind in one scope, for kinds whose CRD may come and
go while the operator runs (Gateway API, Prometheus Operator, KEDA).

kopf's watch of a kind whose CRD was removed meets 404 and re-raises it: the operator ended, or
lived on with its workers stopped. This watch treats 404 as what it means -- the kind is not
served, so none of its objects exist -- and waits for the CRD to return: tried again after 1 s,
doubling to 60 s, or at once when the controller sees the CRD come back (`wake`). Otherwise it
is the usual reflector: list, then watch from the list's resourceVersion; a stream the apiserver
ends is resumed from the last version seen, 410 Gone re-lists, and the same guards as kopf's
watches are set (a server-side timeout, a connect timeout, and a read timeout that reconnects a
stream gone silent: kopf#1276, kopf#996).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Final

import aiohttp

from modeldeploy_operator.kinds import Kind
from modeldeploy_operator.kube import UNREACHABLE, ApiError, KubeClient

log = logging.getLogger("modeldeploy.kindwatch")

# Each watch request asks the apiserver to end it after this long; it is resumed from the last
# version seen.
WATCH_SERVER_TIMEOUT_SECONDS: Final = 300
# A watch connection that is not established this fast is tried again (an apiserver host gone).
WATCH_CONNECT_TIMEOUT_SECONDS: Final = 5
# A stream silent for this long is reconnected from the last version seen: the apiserver sends a
# bookmark about every minute, so silence beyond that is a stream that stopped delivering
# (kopf#1276).
WATCH_INACTIVITY_TIMEOUT_SECONDS: Final = 70
# While the kind is not served (or the apiserver refuses for a reason that needs a person, such
# as 403), the next try waits this long, doubled per failure up to the cap; a returning CRD wakes
# the watch sooner.
RETRY_SECONDS: Final = 1.0
MAX_RETRY_SECONDS: Final = 60.0
# Retries of a failed request, kopf's and these watches', e.g. a watch reconnecting while the
# apiserver restarts (connection refused, then 503 "not all HTTP paths installed", then 429
# "storage is (re)initializing" for the ModelDeployments' watch cache): at most 2 s apart, so a
# returning apiserver is found within 2 s (kopf's default grows to 13 and 21 s: measured, a
# change made after the apiserver returned waited 17 s). kopf escalates the error after as long
# in total as its default (54 s); a longer Retry-After from the apiserver (its watch cache
# re-initialising after etcd was down long) still wins there. These watches never give up.
REQUEST_RETRY_BACKOFFS: Final = (0.5, 1.0, 1.5, *(2.0,) * 26)

Body = dict[str, Any]


def retry_delay(failures: int) -> float:
    """Seconds until the next try after `failures` refusals in a row (at least one)."""
    return min(RETRY_SECONDS * 2.0 ** min(max(failures - 1, 0), 16), MAX_RETRY_SECONDS)


def transient_retry_delay(failures: int) -> float:
    """Seconds until the next try after `failures` transient failures in a row (no answer, 429,
    5xx): as kopf's own requests retry (REQUEST_RETRY_BACKOFFS), never more than 2 s apart."""
    return REQUEST_RETRY_BACKOFFS[min(max(failures, 1), len(REQUEST_RETRY_BACKOFFS)) - 1]


class KindWatch:
    """Keeps a listener current with one kind's objects in one scope (None: every namespace).

    `on_listing(items, version)`: the complete set of objects as of `version`; after 404 it is
    called with no items and no version (nothing of the kind exists). `on_event(type, body)`:
    an ADDED, MODIFIED or DELETED object. `on_gone()`: the kind stopped being served while it
    was watched (its CRD was removed).
    """

    def __init__(
        self,
        client: KubeClient,
        kind: Kind,
        namespace: str | None,
        label_selector: str,
        *,
        on_listing: Callable[[list[Body], str], None],
        on_event: Callable[[str, Body], None],
        on_gone: Callable[[], None],
    ) -> None:
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self._on_listing = on_listing
        self._on_event = on_event
        self._on_gone = on_gone
        self._wake = asyncio.Event()
        # Whether the last answer said the kind is served (None before the first).
        self.served: bool | None = None

    def wake(self) -> None:
        """The kind's CRD was (re)created: a watch waiting for it tries at once."""
        self._wake.set()

    async def run(self) -> None:
        """Forever; only cancellation ends it (an unexpected error is a bug and ends it too, which
        fails /healthz, as a stopped worker does)."""
        failures = 0
        while True:
            try:
                version: str | None = await self._list()
                failures = 0
                while version is not None:
                    version = await self._watch(version)
                continue  # 410 Gone: re-list at once
            except ApiError as err:
                transient = err.status == 429 or err.status >= 500
                if err.status == 404:
                    self._absent()
                else:
                    log.warning("%s: %s", self._where(), err)
            except UNREACHABLE as err:
                transient = True
                log.warning("%s: %r", self._where(), err)
            failures += 1
            delay = transient_retry_delay(failures) if transient else retry_delay(failures)
            if await self._pause(delay):
                failures = 0  # the CRD is back: try quickly again while its storage starts

    async def _list(self) -> str:
        items, version = await self.client.list_with_version(
            self.kind, self.namespace, self.label_selector, not_found_ok=False
        )
        if not self.served:
            log.info("%s: listed %d objects", self._where(), len(items))
        self.served = True
        self._wake.clear()  # a CRD event before this listing is in it already
        self._on_listing(items, version)
        return version

    async def _watch(self, since: str) -> str | None:
        """One watch request from `since`: the version to resume from when it ends, or None when
        the history that old is gone (410) and a re-list is needed."""
        version = since
        try:
            async for event in self.client.watch(
                self.kind,
                self.namespace,
                label_selector=self.label_selector,
                resource_version=since,
                server_timeout=WATCH_SERVER_TIMEOUT_SECONDS,
                timeout=aiohttp.ClientTimeout(
                    total=WATCH_SERVER_TIMEOUT_SECONDS + WATCH_CONNECT_TIMEOUT_SECONDS,
                    sock_connect=WATCH_CONNECT_TIMEOUT_SECONDS,
                    sock_read=WATCH_INACTIVITY_TIMEOUT_SECONDS,
                ),
            ):
                kind, body = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if body.get("code") == 410:
                        return None
                    raise ApiError(
                        int(body.get("code") or 500),
                        body.get("reason", ""),
                        body.get("message", ""),
                    )
                version = body.get("metadata", {}).get("resourceVersion") or version
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._on_event(str(kind), body)
        except ApiError as err:
            if err.status == 410:
                return None
            raise
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            # Silent past the read timeout, or cut mid-stream: resume from where it was.
            log.debug("%s: stream ended early; resuming from %s", self._where(), version)
        return version

    def _absent(self) -> None:
        if self.served:
            log.info("%s: no longer served (its CRD was removed)", self._where())
            self.served = False
            self._on_listing([], "")
            self._on_gone()
        elif self.served is None:
            self.served = False
            self._on_listing([], "")

    async def _pause(self, seconds: float) -> bool:
        """Wait `seconds`, or less if woken (also by a wake during the failed try); whether
        woken."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        woken = self._wake.is_set()
        self._wake.clear()
        return woken

    def _where(self) -> str:
        scope = f"in {self.namespace}" if self.namespace else "cluster-wide"
        return f"watch of {self.kind.plural}.{self.kind.group} {scope}"
