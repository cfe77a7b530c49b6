"""ModelDeployment manifests and waits shared by the e2e tests."""

from __future__ import annotations

from typing import Any

from tests.support.kube import Kubectl, eventually
from tests.support.nodes import on_fake_nodes


def model(name: str, version: str = "1", **spec: Any) -> dict[str, Any]:
    """A ModelDeployment whose pods run on the fake nodes (no container runs: its artifact URI
    and image need not exist); pass `server=` to add server knobs."""
    spec["server"] = on_fake_nodes(spec.get("server", {}))
    body: dict[str, Any] = {
        "apiVersion": "modeldeploy.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {
                "format": "sklearn",
                "version": version,
                "storageUri": f"http://models.example.org/{name}/{version}/model.joblib",
            },
            "replicas": 2,
            **spec,
        },
    }
    return body


def condition(md: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    for cond in (md or {}).get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return dict(cond)
    return {}


def wait_ready(k: Kubectl, name: str, timeout: float = 60) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        md = k.get("md", name)
        ok = (
            md is not None
            and md.get("status", {}).get("phase") == "Ready"
            and md["status"].get("observedGeneration") == md["metadata"]["generation"]
            and condition(md, "Ready").get("status") == "True"
        )
        return md if ok else None

    return dict(eventually(ready, timeout=timeout, what=f"{name} Ready"))
