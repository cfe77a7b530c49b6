"""Names and labels of everything the operator creates, defined once (CONVENTIONS: children).

Child names: per live version `<md>-v<version-slug>` (Deployment, Service, HPA), per model `<md>`
(model Service, HTTPRoute, monitoring objects). Every name fits a DNS-1035 label (63 characters)
because Services need that.

Labels: every child carries `app.kubernetes.io/{name,managed-by,part-of}` and
`modeldeploy.dev/model`; per-version children add `modeldeploy.dev/version` and
`modeldeploy.dev/track`. Pods carry the same labels *except the track*: a Deployment's pod
template labels cannot change without restarting every pod, and promotion turns the canary's
Deployment into the stable one — with the track on pods, promotion would restart the whole new
stable fleet at the moment it takes all traffic. The track lives on the Deployment, its Service
and its HPA (whose labels change freely); metrics carry `model` and `version` themselves.

Selectors use the immutable pair model + version only (a Deployment's selector can never change).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Final, Literal

Track = Literal["stable", "canary"]

LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MODEL: Final = "modeldeploy.dev/model"
LABEL_VERSION: Final = "modeldeploy.dev/version"
LABEL_TRACK: Final = "modeldeploy.dev/track"

MANAGER: Final = "modeldeploy"
PART_OF: Final = "modeldeploy"
# What selects our children and pods, and nothing else, in list and watch requests.
MANAGED_SELECTOR: Final = f"{LABEL_MANAGED_BY}={MANAGER}"

# Pod template annotation: fingerprint of the serving template the pods run.
ANNOTATION_SERVING_HASH: Final = "modeldeploy.dev/serving-hash"

DNS_LABEL_MAX: Final = 63
_HASH_LENGTH: Final = 6
_SLUG_UNSAFE = re.compile(r"[^a-z0-9-]+")


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]


def version_slug(version: str) -> str:
    """A DNS-safe, lowercase form of a version, deterministic and collision-resistant.

    Versions that already are lowercase alphanumerics and '-' pass through ("2" → "2"); any
    other gets its text folded and a hash of the original appended ("1.0" → "1-0-<hash>"), so
    "1.0", "1_0", "1-0" and "V1" never share a slug.
    """
    if not version:
        raise ValueError("version must not be empty")
    folded = _SLUG_UNSAFE.sub("-", version.lower()).strip("-")
    if folded == version:
        return folded
    return f"{folded}-{_short_hash(version)}" if folded else _short_hash(version)


def track_name(md_name: str, version: str) -> str:
    """`<md>-v<slug>`: the Deployment, Service and HPA of one version of a ModelDeployment.

    When that would exceed a DNS label, the name is cut and a hash of the full name appended,
    keeping it unique and within 63 characters.
    """
    name = f"{md_name}-v{version_slug(version)}"
    if len(name) <= DNS_LABEL_MAX:
        return name
    keep = DNS_LABEL_MAX - _HASH_LENGTH - 1
    return f"{name[:keep].rstrip('-')}-{_short_hash(name)}"


def model_service_name(md_name: str) -> str:
    """The Service clients call: the ModelDeployment's own name."""
    return md_name


def model_labels(md_name: str) -> dict[str, str]:
    """Labels of per-model children (model Service, HTTPRoute, monitoring objects)."""
    return {
        LABEL_NAME: md_name,
        LABEL_MANAGED_BY: MANAGER,
        LABEL_PART_OF: PART_OF,
        LABEL_MODEL: md_name,
    }


def pod_labels(md_name: str, version: str) -> dict[str, str]:
    """Labels of a version's pods: everything but the track (see the module docstring)."""
    return {**model_labels(md_name), LABEL_VERSION: version}


def labels_for(md_name: str, version: str, track: Track) -> dict[str, str]:
    """Labels of a version's Deployment, Service and HPA."""
    return {**pod_labels(md_name, version), LABEL_TRACK: track}


def version_selector(md_name: str, version: str) -> dict[str, str]:
    """Selects one version's pods; what its Deployment and Service select (immutable)."""
    return {LABEL_MODEL: md_name, LABEL_VERSION: version}


def model_selector(md_name: str) -> dict[str, str]:
    """Selects the pods of every version of a ModelDeployment."""
    return {LABEL_MODEL: md_name}


def selector_string(selector: Mapping[str, str]) -> str:
    """A label selector as the scale subresource and `kubectl -l` spell it."""
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
