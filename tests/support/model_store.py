"""A model store for real pods: a Deployment of the server image that writes one artifact per
version, with the scikit-learn that will load them, and serves them over HTTP at
`http://store/<version>/model.joblib` in its namespace (as examples/iris.yaml does for its users).
Each version's model does something known with an iris row (tests/support/load.py sends one).
"""

from __future__ import annotations

from typing import Final

from tests.support.images import SERVER_IMAGE
from tests.support.kube import Manifest

STORE: Final = "store"
# What each version's model does with an iris row.
STABLE, HEALTHY = "1", "2"  # iris LogisticRegressions: 200
# A 600-tree RandomForest behind a step the server's fast path does not cover (a function),
# so scikit-learn serves it: 200, in tens of milliseconds.
SLOW = "slow"
FAILING = "failing"  # its first pipeline step raises IndexError on every batch of one row: 500
WIDE = "wide"  # a LogisticRegression trained on five features: four-feature rows answer 400

STORE_SCRIPT: Final = f"""
import functools, http.server, operator, pathlib
import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

features, target = load_iris(return_X_y=True)
failing = make_pipeline(FunctionTransformer(), LogisticRegression(max_iter=1000))
failing.fit(features, target)
failing[0].func = operator.itemgetter(10)  # rows[10]: out of bounds for one row
wide = np.column_stack([features, features[:, 0] * features[:, 1]])
models = {{
    "{STABLE}": LogisticRegression(C=1.0, max_iter=1000).fit(features, target),
    "{HEALTHY}": LogisticRegression(C=0.1, max_iter=1000).fit(features, target),
    "{SLOW}": make_pipeline(
        FunctionTransformer(np.positive), RandomForestClassifier(n_estimators=600, random_state=0)
    ).fit(features, target),
    "{FAILING}": failing,
    "{WIDE}": LogisticRegression(max_iter=1000).fit(wide, target),
}}
for version, model in models.items():
    path = pathlib.Path("/srv", version, "model.joblib")
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
pathlib.Path("/srv/ready").write_text("ok")
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="/srv")
http.server.ThreadingHTTPServer(("", 8000), handler).serve_forever()
"""


def store_objects() -> list[Manifest]:
    labels = {"app.kubernetes.io/name": STORE}
    container = {
        "name": STORE,
        "image": SERVER_IMAGE,
        "command": ["python", "-c", STORE_SCRIPT],
        "ports": [{"name": "http", "containerPort": 8000}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 1},
        "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False},
        "volumeMounts": [
            {"name": "srv", "mountPath": "/srv"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": STORE, "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [container],
                        "automountServiceAccountToken": False,
                        "securityContext": {"runAsNonRoot": True, "runAsUser": 65532},
                        "volumes": [
                            {"name": "srv", "emptyDir": {}},
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": STORE, "labels": labels},
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        },
    ]


def artifact_uri(version: str) -> str:
    """Where the store serves `version`, for pods in its namespace."""
    return f"http://{STORE}/{version}/model.joblib"
