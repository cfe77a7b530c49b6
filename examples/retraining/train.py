"""A retraining Job's trainer: fit a model on the data it is given and register it in MLflow,
tagged with the RetrainingRun it trains for. The user's code: the operator only runs it.

Runs on the model server image (numpy, scikit-learn, joblib, httpx; no mlflow package), so it
registers through MLflow's REST API and artifact proxy:

    python train.py --data http://files/iris/train.csv [--label-column label] [--shuffle-labels]
                    [--drift-reference]

The operator gives it MODELDEPLOY_RETRAINING_RUN (the tag value), MODELDEPLOY_REGISTERED_MODEL
and MLFLOW_TRACKING_URI, and, when the target's source names a credentials Secret,
MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN.
`--shuffle-labels` trains on permuted labels: a deliberately bad candidate, which the evaluation
gate must refuse (the demo and the tests use it). `--drift-reference` registers the training
features' drift reference (`reference.json`, `modeldeploy reference`'s format) beside the model
file: the serving pods fetch it with the model, and their input-drift PSI
(`modeldeploy_feature_drift`) compares live requests with this training data.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import os
import sys
import time

import httpx
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

RUN_TAG = "modeldeploy.dev/retraining-run"  # modeldeploy_serving.contract.RETRAINING_RUN_TAG
API = "api/2.0/mlflow"
ARTIFACTS = "api/2.0/mlflow-artifacts/artifacts"
DEFAULT_EXPERIMENT = "0"


def load(url: str, label_column: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The feature names, the features and the labels of the CSV at `url`."""
    rows = list(csv.DictReader(io.StringIO(httpx.get(url, timeout=60).raise_for_status().text)))
    features = [name for name in rows[0] if name != label_column]
    x = np.array([[float(row[name]) for name in features] for row in rows])
    y = np.array([int(float(row[label_column])) for row in rows])
    return features, x, y


def drift_reference(features: list[str], x: np.ndarray) -> bytes:
    """The training data's drift reference, as `modeldeploy reference` writes it."""
    # The server image's own package: the format is the one its server reads.
    from modeldeploy_serving.drift import build_reference

    return build_reference(x, features).to_json()


def register(client: httpx.Client, name: str, run_tag: str, files: dict[str, bytes]) -> str:
    """Log the model's files (model.joblib first) in a run of its own and register them as the
    next version of `name`."""
    tags = [{"key": RUN_TAG, "value": run_tag}]
    run = (
        client.post(
            f"{API}/runs/create",
            json={
                "experiment_id": DEFAULT_EXPERIMENT,
                "start_time": int(time.time() * 1000),
                "tags": tags,
            },
        )
        .raise_for_status()
        .json()["run"]["info"]
    )
    run_id, artifact_uri = run["run_id"], run["artifact_uri"]
    # mlflow-artifacts:/0/<run>/artifacts → the proxy's path 0/<run>/artifacts
    root = artifact_uri.removeprefix("mlflow-artifacts:").strip("/")
    for filename, content in files.items():
        client.put(f"{ARTIFACTS}/{root}/model/{filename}", content=content).raise_for_status()
    created = client.post(f"{API}/registered-models/create", json={"name": name})
    if created.status_code != 200 and "RESOURCE_ALREADY_EXISTS" not in created.text:
        created.raise_for_status()
    version = (
        client.post(
            f"{API}/model-versions/create",
            json={"name": name, "source": f"{artifact_uri}/model", "run_id": run_id, "tags": tags},
        )
        .raise_for_status()
        .json()["model_version"]["version"]
    )
    client.post(
        f"{API}/runs/update",
        json={"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)},
    ).raise_for_status()
    return str(version)


def credentials() -> dict[str, str]:
    """MLflow's credentials as its own clients read them: a token, else a username and password."""
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if user:
        pair = f"{user}:{os.environ.get('MLFLOW_TRACKING_PASSWORD', '')}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    return {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="http(s) URL of the training CSV")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--shuffle-labels", action="store_true", help="train a bad model")
    parser.add_argument(
        "--drift-reference",
        action="store_true",
        help="register reference.json beside the model (the server's drift metric reads it)",
    )
    args = parser.parse_args()
    run_tag = os.environ["MODELDEPLOY_RETRAINING_RUN"]
    name = os.environ["MODELDEPLOY_REGISTERED_MODEL"]
    tracking = os.environ["MLFLOW_TRACKING_URI"].rstrip("/")

    features, x, y = load(args.data, args.label_column)
    if args.shuffle_labels:
        y = np.random.default_rng(0).permutation(y)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    files = {"model.joblib": buffer.getvalue()}
    if args.drift_reference:
        files["reference.json"] = drift_reference(features, x)
    with httpx.Client(base_url=tracking, timeout=60, headers=credentials()) as client:
        version = register(client, name, run_tag, files)
    print(f"trained on {len(y)} rows; registered {name} version {version} for run {run_tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
