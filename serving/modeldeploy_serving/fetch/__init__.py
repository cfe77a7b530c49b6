"""`modeldeploy fetch URI DEST [--sha256 HEX]`: the storage initializer.

Brings a model into DEST, the directory `modeldeploy serve --model-dir` reads, and checks it:

- `file:///path` or `/path` — a file or a directory on a mounted volume;
- `pvc://CLAIM/PATH` — the same, under `--pvc-root` (default `/mnt/pvc`, or
  `$MODELDEPLOY_PVC_ROOT`): the claim is expected mounted read-only at `/mnt/pvc/CLAIM`;
- `http://` / `https://` — one file, streamed; the length is checked against Content-Length and a
  broken transfer resumes with a Range request when the server takes them;
- `s3://BUCKET/KEY` (extra `s3`, boto3; `AWS_ENDPOINT_URL` for S3-compatible stores) and
  `gs://BUCKET/OBJECT` (extra `gcs`) — an object, or every object under a prefix ending in `/`;
- `models:/NAME/VERSION` and `models:/NAME@ALIAS` — MLflow's model registry, resolved through its
  REST API at `$MLFLOW_TRACKING_URI` (token or user/password from `MLFLOW_TRACKING_TOKEN`,
  `MLFLOW_TRACKING_USERNAME`/`PASSWORD`) and downloaded through its artifact proxy.

A single file lands as `model.skops` when its name ends in `.skops`, else as `model.joblib`; a
`reference.json` beside it is brought along when there is one; it is optional, so one that
cannot be fetched or is not a valid reference is left out with a warning. A directory is copied
as it is.

DEST then must hold a model (model.joblib, model.skops or an MLflow `MLmodel`), and with
--sha256 that model file must have the digest. Atomic: everything is downloaded into a staging
directory first; when DEST can be replaced (absent or empty, and not a mount point) the staging
directory is renamed to DEST, otherwise (an emptyDir mounted at DEST) its entries are renamed into
DEST with the model file last. A failed or mismatching download leaves DEST as it was.

Layout: one module per scheme behind the `Source` protocol (source.py: local.py, http.py,
s3.py, gcs.py, mlflow.py); resolve.py picks the source of a URI; publish.py stages, verifies
and publishes; cli.py is the command.
"""

from modeldeploy_serving.fetch.cli import main
from modeldeploy_serving.fetch.publish import fetch
from modeldeploy_serving.fetch.source import FetchOptions

__all__ = ["FetchOptions", "fetch", "main"]
