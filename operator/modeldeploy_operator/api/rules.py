"""The rule machinery: a rule written once, checked by the apiserver and by pydantic alike.

A rule is one CEL expression and one message. The CEL goes into the CRD (`crdgen`), so the
apiserver rejects a bad manifest with the rule's message; its Python twin runs in a pydantic
validator and raises the same message, so the operator, the tests and the kubectl plugin agree
with the apiserver. Where a rule is a pattern or a list of names, the CEL is spelled from the same
Python value the twin reads (`cel_string`, `cel_list`, `cel_matches`), so the two cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rule:
    """A cross-field rule: CEL for the apiserver, a message both sides report verbatim.

    `field_path` (relative to the object the rule sits on) makes the apiserver report the error
    on that field, e.g. `spec.autoscaling.minReplicas: Invalid value: ...: <message>`.
    """

    cel: str
    message: str
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        validation = {"rule": self.cel, "message": self.message}
        if self.field_path is not None:
            validation["fieldPath"] = self.field_path
        return validation

    def require(self, holds: bool) -> None:
        """Raise the rule's message when the Python twin of the CEL expression does not hold."""
        if not holds:
            raise ValueError(self.message)


def cel_rules(*rules: Rule) -> dict[str, Any]:
    """`json_schema_extra` carrying rules into the generated schema."""
    return {"x-kubernetes-validations": [rule.to_schema() for rule in rules]}


def cel_string(text: str) -> str:
    """A CEL string literal holding `text` (a pattern's backslashes survive CEL's unescaping)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cel_list(texts: Iterable[str]) -> str:
    """A CEL list literal of strings."""
    return "[" + ", ".join(cel_string(text) for text in texts) + "]"


def cel_matches(pattern: str, text: str) -> bool:
    """The Python twin of CEL's `matches`: an unanchored RE2 search (our patterns anchor
    themselves, and use only syntax RE2 and Python's `re` read alike)."""
    return re.search(pattern, text) is not None
