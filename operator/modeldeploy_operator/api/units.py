"""Units: Go-style durations, Prometheus durations and Kubernetes quantities.

Each grammar is written once, as the pattern the CRD carries; the parser is the same pattern with
its parts named, and the unit tables the patterns list their suffixes from are the tables the
parsers convert with. The duration bound (a CEL rule with its Python twin) lives here too.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field, WithJsonSchema

from modeldeploy_operator.api.limits import MAX_DURATION_LENGTH, MAX_QUANTITY_LENGTH
from modeldeploy_operator.api.rules import Rule, cel_rules, cel_string

# ---------------------------------------------------------------------------------------------
# Go-style durations as CEL's duration() and the operator read them: 30s, 5m, 1h30m, 500ms.

# Seconds per unit, in the order the pattern tries them (ms before m).
_DURATION_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_AMOUNT = r"[0-9]+(\.[0-9]+)?"
_DURATION_UNIT = "(" + "|".join(_DURATION_UNIT_SECONDS) + ")"
DURATION_PATTERN: Final = f"^({_DURATION_AMOUNT}{_DURATION_UNIT})+$"
_DURATION_TERM = re.compile(f"(?P<amount>{_DURATION_AMOUNT})(?P<unit>{_DURATION_UNIT})")

MIN_DURATION: Final = "1s"
MAX_DURATION: Final = "24h"


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration ("90s", "1h30m", "250ms"), as CEL's duration() reads it."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 30s, 5m or 1h30m")
    return sum(
        float(term["amount"]) * _DURATION_UNIT_SECONDS[term["unit"]]
        for term in _DURATION_TERM.finditer(text)
    )


def duration_rule(path: str, minimum: str = MIN_DURATION, maximum: str = MAX_DURATION) -> Rule:
    """Durations are bounded to minimum..maximum (24h unless a field needs less); CEL's
    duration() both parses and compares them."""
    # The pattern guard keeps a malformed value to the schema's own error, without a second
    # "type conversion error" from duration().
    return Rule(
        f"!self.matches({cel_string(DURATION_PATTERN)})"
        f" || (duration(self) >= duration({cel_string(minimum)})"
        f" && duration(self) <= duration({cel_string(maximum)}))",
        f"{path} must be between {minimum} and {maximum}",
    )


def duration_field(
    default: str | None,
    *,
    description: str,
    path: str,
    minimum: str = MIN_DURATION,
    maximum: str = MAX_DURATION,
) -> Any:
    """A duration field bounded by `duration_rule`; its model checks the twin with
    `check_duration_range`."""
    return Field(
        default=default,
        description=description,
        pattern=DURATION_PATTERN,
        max_length=MAX_DURATION_LENGTH,
        json_schema_extra=cel_rules(duration_rule(path, minimum, maximum)),
    )


def check_duration_range(
    value: str | None, path: str, minimum: str = MIN_DURATION, maximum: str = MAX_DURATION
) -> None:
    """The Python twin of `duration_rule`."""
    if value is not None:
        seconds = parse_duration(value)
        duration_rule(path, minimum, maximum).require(
            parse_duration(minimum) <= seconds <= parse_duration(maximum)
        )


# ---------------------------------------------------------------------------------------------
# Prometheus durations (alert rules' `for`), the pattern the Prometheus Operator's CRDs use.

PROMETHEUS_DURATION_PATTERN: Final = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)


def prometheus_duration_field(default: str, description: str) -> Any:
    return Field(
        default=default,
        description=description,
        pattern=PROMETHEUS_DURATION_PATTERN,
        max_length=MAX_DURATION_LENGTH,
    )


# ---------------------------------------------------------------------------------------------
# Kubernetes resource.Quantity, exactly as the apiserver's own schemas spell it: a signed decimal
# number, then a binary suffix, a decimal suffix or a decimal exponent.

_DECIMAL_SUFFIX_POWERS_OF_TEN: Final = {
    "n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}  # fmt: skip
_BINARY_SUFFIX_POWERS_OF_TWO: Final = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_SUFFIX_MULTIPLIER: Final = {
    "": Decimal(1),
    **{suffix: Decimal(10) ** power for suffix, power in _DECIMAL_SUFFIX_POWERS_OF_TEN.items()},
    **{suffix: Decimal(2**power) for suffix, power in _BINARY_SUFFIX_POWERS_OF_TWO.items()},
}
_SIGN = r"(\+|-)?"
_NUMBER = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
_SUFFIX = (
    "(([" + "".join(suffix[0] for suffix in _BINARY_SUFFIX_POWERS_OF_TWO) + "]i)"
    "|[" + "".join(_DECIMAL_SUFFIX_POWERS_OF_TEN) + "]"
    f"|([eE]{_SIGN}{_NUMBER}))"
)
QUANTITY_PATTERN: Final = f"^{_SIGN}{_NUMBER}{_SUFFIX}?$"
_QUANTITY = re.compile(f"(?P<number>{_SIGN}{_NUMBER})(?P<suffix>{_SUFFIX})?")


def parse_quantity(value: int | str) -> Decimal:
    """The numeric value of a Kubernetes quantity ("100m" → 0.1, "1Gi" → 1073741824)."""
    if isinstance(value, int):
        return Decimal(value)
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity like 100m, 1.5 or 256Mi")
    number, suffix = match["number"], match["suffix"] or ""
    # E and Ei are exa and exbi; e or E followed by digits is an exponent.
    if suffix in _SUFFIX_MULTIPLIER:
        return Decimal(number) * _SUFFIX_MULTIPLIER[suffix]
    try:
        return Decimal(number + suffix)
    except InvalidOperation as err:  # the grammar allows a fractional exponent; a value does not
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from err


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and len(value) > MAX_QUANTITY_LENGTH:
        raise ValueError(f"a quantity is at most {MAX_QUANTITY_LENGTH} characters")
    parse_quantity(value)
    return value


Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "maxLength": MAX_QUANTITY_LENGTH,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
