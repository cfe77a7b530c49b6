from __future__ import annotations

from typing import Any

from modeldeploy_operator.controller import is_older, owner_key


def body(rv: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"resourceVersion": rv, "namespace": "ns", "labels": labels}}


def test_an_event_older_than_our_own_write_is_stale() -> None:
    assert is_older(body("41"), body("42"))
    assert not is_older(body("42"), body("42"))  # the initial listing repeats what we hold
    assert not is_older(body("43"), body("42"))
    assert not is_older(body("1"), None)


def test_opaque_resource_versions_are_never_called_older() -> None:
    assert not is_older(body("abc"), body("42"))
    assert not is_older(body("41"), body(""))


def test_children_are_found_by_their_model_label() -> None:
    assert owner_key(body("1", **{"modeldeploy.dev/model": "iris"})) == ("ns", "iris")
    assert owner_key(body("1")) is None
