from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modeldeploy_operator.peering import is_active

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def peer(priority: int, seen_ago: float = 1, lifetime: int = 15) -> dict[str, object]:
    lastseen = (NOW - timedelta(seconds=seen_ago)).isoformat()
    return {"priority": priority, "lastseen": lastseen, "lifetime": lifetime}


def test_the_highest_live_priority_leads() -> None:
    peers = {"a": peer(10), "b": peer(20)}
    assert is_active(peers, "b", 20, NOW)
    assert not is_active(peers, "a", 10, NOW)


def test_equal_priorities_pause_everyone_like_kopf() -> None:
    assert not is_active({"a": peer(10), "b": peer(10)}, "a", 10, NOW)


def test_a_dead_peer_does_not_count() -> None:
    assert is_active({"a": peer(10), "b": peer(20, seen_ago=60)}, "a", 10, NOW)


def test_alone_or_with_garbage_we_lead() -> None:
    assert is_active({}, "a", 1, NOW)
    assert is_active({"b": {"priority": 99}}, "a", 1, NOW)  # no lastseen: not live
