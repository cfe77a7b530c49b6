"""KindWatch against an in-process apiserver: a kind that is not served (its CRD absent or
removed), comes back, expires its history, or whose stream goes silent."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from modeldeploy_operator import kinds, kindwatch, naming
from modeldeploy_operator.kindwatch import KindWatch, retry_delay, transient_retry_delay
from modeldeploy_operator.kube import Credentials, KubeClient

from tests.unit.operator.fake_apiserver import FakeApiserver, running

KIND = kinds.POD_MONITOR
Body = dict[str, Any]


def pod_monitor(name: str, managed: bool = True) -> Body:
    labels = {naming.LABEL_MANAGED_BY: naming.MANAGER} if managed else {}
    return {"metadata": {"name": name, "namespace": "ns", "labels": labels}, "spec": {}}


class Recorder:
    """What the watch told its listener, in order."""

    def __init__(self) -> None:
        self.listings: list[tuple[list[str], str]] = []
        self.events: list[tuple[str, str]] = []
        self.gone = 0

    def listed(self, items: list[Body], version: str) -> None:
        self.listings.append((sorted(b["metadata"]["name"] for b in items), version))

    def event(self, event_type: str, body: Body) -> None:
        self.events.append((event_type, body["metadata"]["name"]))

    def went(self) -> None:
        self.gone += 1


async def until(what: str, condition: Callable[[], bool], seconds: float = 10.0) -> None:
    try:
        async with asyncio.timeout(seconds):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not within {seconds} s: {what}") from None


def watching(
    api: FakeApiserver, scenario: Callable[[KindWatch, Recorder], Awaitable[None]]
) -> Recorder:
    """Run a watch of KIND in `ns` against `api` while `scenario` runs."""
    recorder = Recorder()

    async def run() -> None:
        async with running(api) as url:
            client = KubeClient(Credentials(url, False))
            watch = KindWatch(
                client, KIND, "ns", naming.MANAGED_SELECTOR,
                on_listing=recorder.listed, on_event=recorder.event, on_gone=recorder.went,
            )  # fmt: skip
            task = asyncio.create_task(watch.run())
            try:
                await scenario(watch, recorder)
                assert not task.done()
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await client.close()

    asyncio.run(run())
    return recorder


def test_the_retry_delay_doubles_from_one_second_to_a_minute() -> None:
    assert [retry_delay(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert retry_delay(10_000) == 60


def test_a_transient_failure_is_retried_at_most_two_seconds_apart() -> None:
    """An apiserver restarting (no answer, 503, 429) is found again within 2 s of its return,
    as kopf's watches find it (bench/chaos.py `apiserver`)."""
    assert [transient_retry_delay(n) for n in range(1, 6)] == [0.5, 1.0, 1.5, 2.0, 2.0]
    assert transient_retry_delay(10_000) == 2.0


def test_lists_then_watches_our_objects_from_the_listed_version() -> None:
    api = FakeApiserver([KIND])
    api.put(KIND, pod_monitor("a"))
    api.put(KIND, pod_monitor("theirs", managed=False))

    async def scenario(_: KindWatch, seen: Recorder) -> None:
        await until("listed", lambda: bool(seen.listings))
        api.put(KIND, pod_monitor("b"))
        api.delete(KIND, "ns", "a")
        await until("events", lambda: len(seen.events) == 2)

    seen = watching(api, scenario)
    assert [names for names, _ in seen.listings] == [["a"]]
    assert seen.events == [("ADDED", "b"), ("DELETED", "a")]
    assert seen.gone == 0


def test_a_removed_kind_empties_the_listing_and_a_returning_one_wakes_the_watch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """404 means the CRD is gone with every object of it: the listener hears an empty listing
    and `on_gone` once. While absent the watch waits (the delay made long here: only `wake`,
    as the controller calls on the CRD's return, can bring it back within the test)."""
    monkeypatch.setattr(kindwatch, "RETRY_SECONDS", 600.0)
    api = FakeApiserver([KIND])
    api.put(KIND, pod_monitor("a"))

    async def scenario(watch: KindWatch, seen: Recorder) -> None:
        await until("listed", lambda: bool(seen.listings))
        await api.remove_kind(KIND)
        await until("gone", lambda: seen.gone == 1)
        assert watch.served is False
        await asyncio.sleep(0.5)
        api.serve_kind(KIND)
        api.put(KIND, pod_monitor("c"))
        watch.wake()
        await until("listed again", lambda: seen.listings[-1][0] == ["c"])

    seen = watching(api, scenario)
    assert [names for names, _ in seen.listings] == [["a"], [], ["c"]]
    assert seen.listings[1][1] == ""  # no version: nothing of the kind exists
    assert seen.events == [("DELETED", "a")]
    assert seen.gone == 1


def test_a_kind_absent_from_the_start_is_not_reported_gone() -> None:
    api = FakeApiserver([])

    async def scenario(_: KindWatch, seen: Recorder) -> None:
        await until("listed", lambda: bool(seen.listings))
        await asyncio.sleep(1.5)  # past the first retry

    seen = watching(api, scenario)
    assert seen.listings == [([], "")]
    assert seen.gone == 0


def test_an_expired_version_is_listed_again() -> None:
    """410 Gone: the history since the watch's version is compacted; only a re-list can say
    what changed (a deletion included)."""
    api = FakeApiserver([KIND])
    api.put(KIND, pod_monitor("a"))

    async def scenario(_: KindWatch, seen: Recorder) -> None:
        await until("listed", lambda: bool(seen.listings))
        await until("watching", lambda: any("watch" in r.query for r in api.requests))
        api.silence_watches(KIND)
        api.delete(KIND, "ns", "a")  # never delivered
        api.put(KIND, pod_monitor("b"))
        api.compact()
        api.end_watches(KIND)
        await until("listed again", lambda: len(seen.listings) == 2)

    seen = watching(api, scenario)
    assert [names for names, _ in seen.listings] == [["a"], ["b"]]
    assert seen.events == []


def test_a_silent_stream_is_resumed_after_the_read_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kopf#1276: a stream that stops delivering with its connection open. The read timeout
    reconnects it from the last version seen (no re-list), so the missed event arrives."""
    monkeypatch.setattr(kindwatch, "WATCH_INACTIVITY_TIMEOUT_SECONDS", 0.5)
    api = FakeApiserver([KIND])

    async def scenario(_: KindWatch, seen: Recorder) -> None:
        await until("watching", lambda: any("watch" in r.query for r in api.requests))
        api.silence_watches(KIND)
        api.put(KIND, pod_monitor("a"))
        await until("the missed event", lambda: seen.events == [("ADDED", "a")])

    seen = watching(api, scenario)
    assert len(seen.listings) == 1
    watches = [r for r in api.requests if "watch" in r.query]
    assert len(watches) >= 2
    assert all(r.query["labelSelector"] == naming.MANAGED_SELECTOR for r in watches)
    assert watches[1].query["resourceVersion"] == watches[0].query["resourceVersion"]
