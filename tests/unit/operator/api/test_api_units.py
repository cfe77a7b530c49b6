"""api.units: each grammar written once; its parser is the same pattern with the parts named."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from modeldeploy_operator.api.units import (
    DURATION_PATTERN,
    QUANTITY_PATTERN,
    duration_rule,
    parse_duration,
    parse_quantity,
)

# As the apiserver's own schemas spell them (k8s.io/apimachinery resource.Quantity) and as
# CEL's duration() reads them: the patterns are built from the unit tables, so pin the result.
APISERVER_QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
GO_DURATION = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"


def test_patterns_are_spelled_as_the_apiserver_spells_them() -> None:
    assert QUANTITY_PATTERN == APISERVER_QUANTITY
    assert DURATION_PATTERN == GO_DURATION


class TestParseQuantity:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("1n", Decimal("1e-9")),
            ("1u", Decimal("1e-6")),
            ("1k", Decimal(1000)),
            ("1M", Decimal(10**6)),
            ("1T", Decimal(10**12)),
            ("1P", Decimal(10**15)),
            ("1E", Decimal(10**18)),
            ("1Ki", Decimal(1024)),
            ("1Ti", Decimal(2**40)),
            ("1Pi", Decimal(2**50)),
            ("1Ei", Decimal(2**60)),
            ("-1.5", Decimal("-1.5")),
            ("+2", Decimal(2)),
            (".5", Decimal("0.5")),
            ("1.", Decimal(1)),
            ("1E3", Decimal(1000)),
            ("1e-3", Decimal("0.001")),
            ("12e+2", Decimal(1200)),
        ],
    )
    def test_every_suffix_and_form(self, value: str, expected: Decimal) -> None:
        assert parse_quantity(value) == expected
        assert re.fullmatch(APISERVER_QUANTITY, value)

    @pytest.mark.parametrize("value", ["1Ki ", " 1", "1ki", "1e", "1E+", "--1", "1.5.5", "1Mi\n"])
    def test_refuses_what_the_pattern_refuses(self, value: str) -> None:
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            parse_quantity(value)

    def test_a_fractional_exponent_fits_the_pattern_but_is_no_number(self) -> None:
        assert re.fullmatch(APISERVER_QUANTITY, "1e1.5")
        with pytest.raises(ValueError, match="not a Kubernetes quantity"):
            parse_quantity("1e1.5")


class TestDurations:
    def test_terms_add_up(self) -> None:
        assert parse_duration("1h30m15s500ms") == pytest.approx(5415.5)

    def test_the_bound_is_spelled_once(self) -> None:
        rule = duration_rule("spec.x", minimum="0s")
        assert rule.message == "spec.x must be between 0s and 24h"
        assert rule.cel.endswith(
            " || (duration(self) >= duration('0s') && duration(self) <= duration('24h'))"
        )
