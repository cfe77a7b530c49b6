"""examples/gitops builds with `kubectl kustomize`, every environment is a valid ModelDeployment
(by the typed API and by the apiserver's CRD), and a rollout is a one-line change."""

from __future__ import annotations

import difflib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from modeldeploy_operator import api

from tests.support.kube import Kubectl

ROOT = Path(__file__).resolve().parents[2]
GITOPS = ROOT / "examples" / "gitops"
OVERLAYS = sorted(p.name for p in (GITOPS / "overlays").iterdir() if p.is_dir())
VERSION_LINE = re.compile(r'^(\s*version: )"([^"]+)"$', re.MULTILINE)


def build(directory: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def bump(overlay: Path, version: str) -> None:
    """What a person does in Git: edit the one version line of model-version.yaml."""
    path = overlay / "model-version.yaml"
    text, count = VERSION_LINE.subn(rf'\g<1>"{version}"', path.read_text())
    assert count == 1, "model-version.yaml must hold exactly one version line"
    path.write_text(text)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of examples/gitops to edit, as a clone of the Git repository would be."""
    copy = tmp_path / "gitops"
    shutil.copytree(GITOPS, copy)
    return copy


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_builds_one_valid_model_deployment(overlay: str) -> None:
    [md] = build(GITOPS / "overlays" / overlay)
    assert (md["apiVersion"], md["kind"]) == (api.API_VERSION, api.KIND)
    assert md["metadata"]["namespace"]
    spec = api.ModelDeploymentSpec.model_validate(md["spec"])
    assert spec.model.storage_uri.split("/")[4] == spec.model.version


def test_there_are_staging_and_production_and_they_differ() -> None:
    assert {"staging", "production"} <= set(OVERLAYS)
    [staging] = build(GITOPS / "overlays" / "staging")
    [production] = build(GITOPS / "overlays" / "production")
    assert staging["metadata"]["namespace"] != production["metadata"]["namespace"]
    assert staging["spec"]["rollout"]["strategy"] == "Immediate"
    assert production["spec"]["rollout"]["strategy"] == "Canary"
    assert production["spec"]["rollout"]["analysis"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_rollout_is_a_one_line_change(tree: Path, overlay: str) -> None:
    directory = tree / "overlays" / overlay
    before_source = (directory / "model-version.yaml").read_text()
    [before] = build(directory)

    bump(directory, "7")

    after_source = (directory / "model-version.yaml").read_text()
    changed = [
        line
        for line in difflib.unified_diff(
            before_source.splitlines(), after_source.splitlines(), lineterm="", n=0
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert changed == [f'-    version: "{before["spec"]["model"]["version"]}"', '+    version: "7"']
    [after] = build(directory)
    assert after["spec"]["model"]["version"] == "7"
    assert after["spec"]["model"]["storageUri"] == before["spec"]["model"]["storageUri"].replace(
        f"/{before['spec']['model']['version']}/", "/7/"
    )
    # Nothing else in the built object moved.
    for built in (before, after):
        del built["spec"]["model"]["version"], built["spec"]["model"]["storageUri"]
    assert before == after


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_apiserver_accepts_each_environment(
    overlay: str, kube: Kubectl, namespace: str
) -> None:
    """Server-side dry run: the installed CRD's schema and CEL rules judge the built object."""
    kube.run(
        "apply", "--server-side", "--force-conflicts",
        "-f", str(ROOT / "crds" / "modeldeploy.dev_modeldeployments.yaml"),
    )  # fmt: skip
    [md] = build(GITOPS / "overlays" / overlay)
    md["metadata"]["namespace"] = namespace
    out = kube.run(
        "apply", "--server-side", "--dry-run=server", "--field-manager=gitops-test",
        "-o", "json", "-f", "-", stdin=json.dumps(md),
    )  # fmt: skip
    assert json.loads(out)["spec"]["model"]["version"] == md["spec"]["model"]["version"]


def test_the_argocd_and_flux_manifests_point_at_the_overlays() -> None:
    applications = list(yaml.safe_load_all((GITOPS / "argocd" / "applications.yaml").read_text()))
    paths = {a["spec"]["source"]["path"] for a in applications}
    assert paths == {f"examples/gitops/overlays/{o}" for o in OVERLAYS}
    for app in applications:
        [md] = build(ROOT / app["spec"]["source"]["path"])
        assert app["spec"]["destination"]["namespace"] == md["metadata"]["namespace"]
    flux = [d for d in yaml.safe_load_all((GITOPS / "flux" / "sync.yaml").read_text())
            if d["kind"] == "Kustomization"]  # fmt: skip
    assert {k["spec"]["path"] for k in flux} == {
        f"./examples/gitops/overlays/{o}" for o in OVERLAYS
    }
    for kustomization in flux:
        assert kustomization["spec"]["wait"] is True
        [check] = kustomization["spec"]["healthCheckExprs"]
        assert (check["apiVersion"], check["kind"]) == (api.API_VERSION, api.KIND)


def test_the_argocd_health_check_kustomization_carries_the_script() -> None:
    [config_map] = build(ROOT / "deploy" / "argocd")
    assert (config_map["kind"], config_map["metadata"]["name"]) == ("ConfigMap", "argocd-cm")
    assert config_map["metadata"]["namespace"] == "argocd"
    script = (ROOT / "deploy" / "argocd" / "health.lua").read_text()
    key = f"resource.customizations.health.{api.GROUP}_{api.KIND}"
    assert config_map["data"] == {key: script}
