from __future__ import annotations

import asyncio

from modeldeploy_operator.workqueue import WorkQueue


def test_a_key_queued_many_times_is_processed_once() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        seen: list[str] = []

        async def process(key: str) -> None:
            seen.append(key)

        for _ in range(5):
            queue.add("a")
        queue.add("b")
        worker = asyncio.create_task(queue.run_worker(process))
        await asyncio.sleep(0.05)
        worker.cancel()
        return seen

    assert asyncio.run(scenario()) == ["a", "b"]


def test_a_key_added_while_processing_runs_again_after() -> None:
    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        seen: list[str] = []
        gate = asyncio.Event()

        async def process(key: str) -> None:
            seen.append(key)
            if len(seen) == 1:
                await gate.wait()

        queue.add("a")
        workers = [asyncio.create_task(queue.run_worker(process)) for _ in range(2)]
        await asyncio.sleep(0.01)
        queue.add("a")  # arrives while "a" is being processed: must not run concurrently
        queue.add("a")
        await asyncio.sleep(0.01)
        assert seen == ["a"]
        gate.set()
        await asyncio.sleep(0.02)
        for w in workers:
            w.cancel()
        return seen

    assert asyncio.run(scenario()) == ["a", "a"]


def test_delayed_keys_arrive_after_their_delay() -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        queue: WorkQueue[str] = WorkQueue()
        seen: list[str] = []

        async def process(key: str) -> None:
            seen.append(key)

        tasks = [
            asyncio.create_task(queue.run_timers()),
            asyncio.create_task(queue.run_worker(process)),
        ]
        queue.add_after("late", 0.1)
        queue.add("now")
        await asyncio.sleep(0.03)
        early = list(seen)
        await asyncio.sleep(0.15)
        for t in tasks:
            t.cancel()
        return early, seen

    early, final = asyncio.run(scenario())
    assert early == ["now"]
    assert final == ["now", "late"]


def test_one_timer_per_key_the_earliest_deadline_wins() -> None:
    """Watch events during a wait that each schedule a recheck must not multiply the passes."""

    async def scenario() -> list[str]:
        queue: WorkQueue[str] = WorkQueue()
        seen: list[str] = []

        async def process(key: str) -> None:
            seen.append(key)

        queue.add_after("a", 3600)
        queue.add_after("a", 0.02)  # earlier: replaces the hour
        queue.add_after("a", 0.05)  # later than the one held: ignored
        queue.add_after("b", 3600)
        assert sorted(key for *_, key in queue._timers) == ["a", "b"]
        tasks = [
            asyncio.create_task(queue.run_timers()),
            asyncio.create_task(queue.run_worker(process)),
        ]
        async with asyncio.timeout(30):  # guards against hanging only
            while not seen:
                await asyncio.sleep(0.01)
        # Nothing left that could run "a" again; "b" keeps its single timer.
        assert [key for *_, key in queue._timers] == ["b"]
        for t in tasks:
            t.cancel()
        return seen

    assert asyncio.run(scenario()) == ["a"]
