"""Whether a live object already holds everything the operator wants it to hold.

Server-side apply of an unchanged manifest is a no-op for the object but still a write request;
the operator compares first so that a steady state costs zero writes (what keeps GitOps tools
quiet and the apiserver idle at thousands of models). The comparison is "desired is a subset of
live": fields other writers or defaulting added are ignored; anything we set that differs counts.
"""

from __future__ import annotations

from typing import Any

from modeldeploy_operator.api import parse_quantity


def _quantity(value: Any) -> float | None:
    """Kubernetes canonicalises quantities ("0.1" → "100m", "1024Mi" → "1Gi")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(parse_quantity(value))
        except ValueError:
            return None
    return None


def is_subset(desired: Any, live: Any) -> bool:
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(is_subset(value, live.get(key)) for key, value in desired.items())
    if isinstance(desired, list):
        # Lists the operator writes are atomic or keyed in a stable order; compare element-wise.
        if not isinstance(live, list) or len(desired) != len(live):
            return False
        return all(is_subset(d, lv) for d, lv in zip(desired, live, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live  # True == 1 in Python, not in a manifest
    if desired == live:
        return True
    want, have = _quantity(desired), _quantity(live)
    return want is not None and have is not None and abs(want - have) <= 1e-9 * max(1.0, abs(want))
