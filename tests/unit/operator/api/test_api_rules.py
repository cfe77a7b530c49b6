"""api.rules: CEL spelled from the Python values the validators read."""

from __future__ import annotations

import pytest
from modeldeploy_operator import api
from modeldeploy_operator.api.rules import Rule, cel_list, cel_matches, cel_string


def test_cel_string_escapes_what_cel_unescapes() -> None:
    assert cel_string("file://") == "'file://'"
    assert cel_string(r"^a\.b$") == r"'^a\\.b$'"
    assert cel_string("it's") == r"'it\'s'"


def test_cel_list() -> None:
    assert cel_list(("cpu", "memory")) == "['cpu', 'memory']"


def test_cel_matches_searches_like_cel() -> None:
    assert cel_matches("b", "abc")
    assert not cel_matches("^b", "abc")


def test_rule_requires_its_twin() -> None:
    rule = Rule("self.a", "spec.a must hold", field_path=".a")
    rule.require(True)
    with pytest.raises(ValueError, match=r"^spec\.a must hold$"):
        rule.require(False)
    assert rule.to_schema() == {"rule": "self.a", "message": "spec.a must hold", "fieldPath": ".a"}


def test_enum_values_and_names_reach_the_cel() -> None:
    assert api.GATEWAY_REF_REQUIRED_RULE.cel == (
        "self.router != 'GatewayAPI' || has(self.gatewayRef)"
    )
    assert api.TOLERATION_EXISTS_RULE.cel == (
        "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''"
    )
    assert api.RESERVED_ENV_RULE.cel == (
        "self.all(e, !(e.name in ['MODELDEPLOY_MODEL', 'MODELDEPLOY_VERSION']))"
    )
    assert api.NAME_RULE.cel == (
        "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
        " && size(self.metadata.name) <= 63"
    )
