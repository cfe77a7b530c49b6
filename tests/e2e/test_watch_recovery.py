"""The operator's watches survive the apiserver replacing a resource's storage.

A CRD whose spec changes (another checkout's CRD applied, an upgrade) makes the apiserver tear
down that resource's storage and watch cache and build new ones: the watches end, are answered
429 "storage is (re)initializing" until the new cache has listed, and resume. A change made in
that window must still reach the operator: waited for here with the suite's usual patience;
bench/chaos.py (scenarios `crd` and `apiserver`) times such recoveries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from modeldeploy_operator import kinds, naming

from tests.e2e.conftest import CRD
from tests.support.kube import Kubectl, eventually
from tests.support.models import model, wait_ready
from tests.support.operator_process import OperatorProcess

# Replaces the ModelDeployment CRD, which every operator on the cluster watches.
pytestmark = pytest.mark.serial

CRD_NAME = f"{kinds.MODEL_DEPLOYMENT.plural}.{kinds.MODEL_DEPLOYMENT.group}"


@pytest.fixture
def crd_restored(kube: Kubectl) -> Iterator[None]:
    yield
    kube.run("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    kube.run("wait", "--for=condition=Established", f"crd/{CRD_NAME}")


def change_crd_spec(kube: Kubectl) -> None:
    """A change of the CRD's spec that means nothing to its objects (its schema's description):
    enough for the apiserver to replace the resource's storage."""
    crd = json.loads(kube.run("get", "crd", CRD_NAME, "-o", "json"))
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["description"] = f"{schema.get('description', '')} ({uuid.uuid4().hex[:6]})"
    kube.run("replace", "-f", "-", stdin=json.dumps(crd))


def replicas_asked(k: Kubectl, name: str) -> int | None:
    deployment = k.get("deployment", naming.track_name(name, "1"))
    return int(deployment["spec"]["replicas"]) if deployment else None


@pytest.mark.usefixtures("crd_restored")
def test_a_change_right_after_the_crd_changed_is_reconciled(
    operator: OperatorProcess, kube: Kubectl, k: Kubectl
) -> None:
    k.apply(model("watched", replicas=1))
    wait_ready(k, "watched")
    for replicas in (2, 3):
        change_crd_spec(kube)
        k.apply(model("watched", replicas=replicas))
        eventually(
            lambda replicas=replicas: replicas_asked(k, "watched") == replicas,
            what=f"the operator scaling watched to {replicas} after the CRD changed",
        )
    assert operator.running
