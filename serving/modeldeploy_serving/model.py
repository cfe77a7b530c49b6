"""The served model: finding the artifact in a model directory, pinning its sha256, loading it
(joblib, or skops' safe format), describing it, and calling it.

A model directory holds one of
- `model.joblib` — joblib/pickle. Loading a pickle runs code from the file: pin its sha256.
- `model.skops` — skops' format, loaded without running code; types outside skops' trusted set
  must be named with `--skops-trusted` (skops explains why each one is risky).
- an MLflow model (`MLmodel` with a `sklearn` flavor), as `modeldeploy fetch models:/...` writes it;
- else its only `.joblib`/`.pkl`/`.pickle`/`.skops` file (a volume served in place).

Input checks the HTTP layer cannot do without the model (feature count, NaN/inf) live here, so the
estimator is called with `assume_finite` and `skip_parameter_validation`: scikit-learn's own
per-call validation costs more than the arithmetic of a small model. Better still, a supported
estimator is served by its exact fast path (fastpath/), once that has computed the same bits as
scikit-learn on the check rows (`use_fast_path`); `path` says which one serves.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import sklearn
from sklearn.base import is_classifier, is_regressor

from modeldeploy_serving.contract import (
    ARTIFACT_SUFFIXES,
    JOBLIB_FILE,
    MLFLOW_FILE,
    SKOPS_FILE,
    SKOPS_SUFFIX,
)
from modeldeploy_serving.errors import BadRequest, DigestMismatch, ModelLoadError
from modeldeploy_serving.fastpath import ROW_DTYPE, FastPath, Unsupported, compile_estimator
from modeldeploy_serving.fastpath.verify import Mismatch, check_rows, fits, verify

log = logging.getLogger(__name__)

MODEL_FILES = (JOBLIB_FILE, SKOPS_FILE)

Method = Literal["predict", "predict_proba"]
Task = Literal["classification", "regression", "other"]
ServingPath = Literal["fast", "sklearn"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def normalize_sha256(value: str) -> str:
    """The digest in lower case; `ValueError` when it is not 64 hex digits."""
    digest = value.strip().lower()
    if digest.startswith("sha256:"):
        digest = digest[len("sha256:") :]
    if not _HEX64.fullmatch(digest):
        raise ValueError(f"sha256 must be 64 hex digits, got {value!r}")
    return digest


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_sha256(actual: str, expected: str | None, what: str) -> str:
    """`actual`; `DigestMismatch` naming `what` when `expected` is given and differs."""
    if expected is not None and actual != normalize_sha256(expected):
        raise DigestMismatch(what, normalize_sha256(expected), actual)
    return actual


def verify_sha256(path: Path, expected: str | None) -> str:
    """The file's sha256; `DigestMismatch` when `expected` is given and differs."""
    return check_sha256(sha256_file(path), expected, str(path))


def locate_artifact(model_dir: Path) -> Path:
    """The model file in `model_dir` (see the module docstring for the layouts)."""
    if not model_dir.is_dir():
        raise ModelLoadError(f"model directory {model_dir} does not exist")
    for name in MODEL_FILES:
        candidate = model_dir / name
        if candidate.is_file():
            return candidate
    mlmodel = model_dir / MLFLOW_FILE
    if mlmodel.is_file():
        return _mlflow_artifact(mlmodel)
    # A volume mounted as it is (pvc://CLAIM/PATH/iris-v2.joblib): its one model file, if unique.
    candidates = sorted(
        p for p in model_dir.iterdir() if p.is_file() and p.suffix in ARTIFACT_SUFFIXES
    )
    if len(candidates) == 1:
        return candidates[0]
    present = sorted(p.name for p in model_dir.iterdir())
    raise ModelLoadError(
        f"no {JOBLIB_FILE}, {SKOPS_FILE}, MLflow {MLFLOW_FILE} or single "
        f"{'/'.join(ARTIFACT_SUFFIXES)} file in {model_dir} "
        f"(it holds: {', '.join(present) or 'nothing'})"
    )


def _mlflow_artifact(mlmodel: Path) -> Path:
    import yaml

    try:
        doc = yaml.safe_load(mlmodel.read_text())
        flavor = doc["flavors"]["sklearn"]
        relative = str(flavor["pickled_model"])
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        raise ModelLoadError(f"{mlmodel} has no usable sklearn flavor: {e!r}") from e
    artifact = (mlmodel.parent / relative).resolve()
    if mlmodel.parent.resolve() not in artifact.parents or not artifact.is_file():
        raise ModelLoadError(f"{mlmodel} names {relative!r}, which is not a file in its directory")
    return artifact


def _is_skops(path: Path) -> bool:
    if path.suffix == SKOPS_SUFFIX:
        return True
    mlmodel = path.parent / MLFLOW_FILE
    if mlmodel.is_file():
        import yaml

        doc = yaml.safe_load(mlmodel.read_text())
        return bool(doc["flavors"]["sklearn"].get("serialization_format") == "skops")
    return False


def _load_estimator(path: Path, data: bytes, skops_trusted: tuple[str, ...]) -> Any:
    """The estimator in `data`, the bytes of `path` (named in messages, never read again)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if _is_skops(path):
                try:
                    import skops.io
                except ImportError as e:
                    raise ModelLoadError(
                        f"{path} is in skops' format, which needs the skops package: "
                        "install modeldeploy[serve] (MLflow 3 saves scikit-learn models so)"
                    ) from e

                untrusted = [
                    t for t in skops.io.get_untrusted_types(data=data) if t not in skops_trusted
                ]
                if untrusted:
                    raise ModelLoadError(
                        f"{path} contains types skops does not trust: {', '.join(untrusted)}; "
                        "review them and pass --skops-trusted TYPE for each to load it"
                    )
                estimator = skops.io.loads(data, trusted=list(skops_trusted) or None)
            else:
                import joblib

                estimator = joblib.load(io.BytesIO(data))
        except ModelLoadError:
            raise
        except Exception as e:
            raise ModelLoadError(f"cannot load {path}: {e!r}") from e
    for w in caught:
        log.warning("loading %s: %s", path.name, w.message)
    if not hasattr(estimator, "predict"):
        raise ModelLoadError(f"{path} holds a {type(estimator).__name__}, which has no predict()")
    return estimator


# Up to this many values, `_all_finite` sums them in Python: cheaper than numpy's two calls.
SMALL_BATCH_VALUES = 64


def _all_finite(rows: np.ndarray) -> bool:
    """Whether every value of float `rows` is finite. Their sum is finite only if they all are
    (a NaN or an infinity makes it NaN or infinite); a sum that overflows says False for finite
    values, which the caller's full check then clears."""
    if rows.size <= SMALL_BATCH_VALUES:
        return math.isfinite(sum(rows.ravel().tolist()))
    return bool(np.isfinite(rows).all())


@dataclass(frozen=True)
class ModelSignature:
    """What the protocols need to know about a model to describe it and check input."""

    task: Task
    n_features: int | None
    feature_names: tuple[str, ...] | None
    classes: np.ndarray | None
    allow_nan: bool
    has_proba: bool
    estimator_type: str


def describe(estimator: Any) -> ModelSignature:
    task: Task = (
        "classification"
        if is_classifier(estimator)
        else "regression"
        if is_regressor(estimator)
        else "other"
    )
    n_features = getattr(estimator, "n_features_in_", None)
    names = getattr(estimator, "feature_names_in_", None)
    classes = getattr(estimator, "classes_", None) if task == "classification" else None
    if isinstance(classes, list) or (classes is not None and np.ndim(classes) != 1):
        # Fitted on a 2-D y: one class list per output, and a row of labels per prediction,
        # where the protocols, the metrics and the analysis take one label per row.
        raise ModelLoadError(
            f"{type(estimator).__name__} was fitted on {len(classes)} outputs (a 2-D y): "
            "multi-output classifiers are not supported; serve one model per output"
        )
    try:
        allow_nan = bool(sklearn.utils.get_tags(estimator).input_tags.allow_nan)
    except Exception:  # a third-party estimator without tags: be strict
        allow_nan = False
    return ModelSignature(
        task=task,
        n_features=int(n_features) if n_features is not None else None,
        feature_names=tuple(str(n) for n in names) if names is not None else None,
        classes=np.asarray(classes) if classes is not None else None,
        allow_nan=allow_nan,
        has_proba=hasattr(estimator, "predict_proba"),
        estimator_type=type(estimator).__name__,
    )


class ServedModel:
    """A loaded estimator with its signature; `predict`/`predict_proba` take checked rows."""

    def __init__(self, estimator: Any, artifact: Path, sha256: str) -> None:
        self.estimator = estimator
        self.artifact = artifact
        self.sha256 = sha256
        self.signature = describe(estimator)
        self.fast_path: FastPath | None = None
        if self.signature.feature_names is not None:
            # Fitted on a DataFrame, called with arrays of the same columns: the warning says
            # nothing the input checks have not already enforced, and it costs on every call.
            warnings.filterwarnings(
                "ignore", message="X does not have valid feature names", category=UserWarning
            )

    @classmethod
    def load(
        cls, model_dir: Path, sha256: str | None = None, skops_trusted: tuple[str, ...] = ()
    ) -> ServedModel:
        artifact = locate_artifact(model_dir)
        # One read: the bytes hashed are the bytes loaded, so a writer on a shared volume cannot
        # swap the file between the check and the load.
        data = artifact.read_bytes()
        digest = check_sha256(hashlib.sha256(data).hexdigest(), sha256, str(artifact))
        if sha256 is None and not _is_skops(artifact):
            log.warning(
                "loading %s without a sha256 pin: a pickle runs code from the file when loaded",
                artifact,
            )
        return cls(_load_estimator(artifact, data, skops_trusted), artifact, digest)

    @property
    def path(self) -> ServingPath:
        """Which computes the outputs of float64 rows: the fast path, or scikit-learn."""
        return "sklearn" if self.fast_path is None else "fast"

    def use_fast_path(self, reference_edges: tuple[tuple[float, ...], ...] | None) -> bool:
        """Serve through the estimator's fast path if it has one that computes the same bits as
        scikit-learn on check rows (built from the drift reference's quantile `edges`, or
        generated); else log why and keep scikit-learn. True when the fast path serves."""
        name = self.signature.estimator_type
        n_features = self.signature.n_features
        try:
            if n_features is None:
                raise Unsupported(f"{name} does not say how many features it takes")
            fast = compile_estimator(self.estimator)
            rows = check_rows(n_features, reference_edges, self.signature.allow_nan)
            verify(fast, self.estimator, rows)
        except Unsupported as e:
            log.info("scikit-learn serves %s: %s", name, e)
            return False
        except Mismatch as e:
            log.warning("scikit-learn serves %s: its fast path failed the check: %s", name, e)
            return False
        except Exception as e:  # a kernel that fails on the check rows: never serve it
            log.warning("scikit-learn serves %s: its fast path failed: %r", name, e)
            return False
        self.fast_path = fast
        log.info(
            "the fast path serves %s: %s, identical to scikit-learn on %d check rows (%s)",
            name,
            fast.description,
            len(rows),
            "from the drift reference" if fits(reference_edges, n_features) else "generated",
        )
        return True

    def check_rows(self, rows: np.ndarray) -> None:
        """`BadRequest` naming the problem when `rows` (2-D, numeric) cannot go to the model."""
        expected = self.signature.n_features
        if expected is not None and rows.shape[1] != expected:
            raise BadRequest(
                f"each row must have {expected} features (the model was trained on {expected}); "
                f"got rows of {rows.shape[1]}"
            )
        if rows.dtype.kind == "f" and not _all_finite(rows):
            finite = np.isfinite(rows)
            bad = ~finite & ~np.isnan(rows) if self.signature.allow_nan else ~finite
            if bad.any():
                r, c = (int(i[0]) for i in np.nonzero(bad))
                what = "infinite" if self.signature.allow_nan else "NaN or infinite"
                raise BadRequest(
                    f"row {r}, feature {c} is {what}; this model takes finite numbers"
                    + ("" if self.signature.allow_nan else " only (no missing values)")
                )

    def predict(self, rows: np.ndarray) -> np.ndarray:
        fast = self.fast_path
        if fast is not None and rows.dtype == ROW_DTYPE:
            return fast.predict(rows)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return np.asarray(self.estimator.predict(rows))

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        if not self.signature.has_proba:
            raise BadRequest(
                f"this model ({self.signature.estimator_type}) has no predict_proba; "
                "ask for the 'predict' output"
            )
        fast = self.fast_path
        if fast is not None and fast.predict_proba is not None and rows.dtype == ROW_DTYPE:
            return fast.predict_proba(rows)
        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            return np.asarray(self.estimator.predict_proba(rows))

    def run(self, method: Method, rows: np.ndarray) -> np.ndarray:
        """Call `method`; an estimator's `ValueError`/`TypeError` on checked rows is a 400."""
        try:
            if method == "predict_proba":
                return self.predict_proba(rows)
            return self.predict(rows)
        except (ValueError, TypeError) as e:
            raise BadRequest(f"the model rejected the input: {e}") from e
