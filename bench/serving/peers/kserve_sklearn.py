"""KServe's Python model server running a joblib scikit-learn model the way KServe's sklearn
server does: `joblib.load` at start, `model.predict(np.array(instances))` per V1 request.

Written for this benchmark (it runs inside the KServe venv, not ours); every other setting is
KServe's default unless the benchmark passes a flag.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import joblib
import kserve
import numpy as np
from kserve import model_server


class SklearnModel(kserve.Model):  # type: ignore[misc]
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.estimator: Any = None

    def load(self) -> bool:
        self.estimator = joblib.load(self.model_dir / "model.joblib")
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        instances = np.asarray(payload["instances"])
        return {"predictions": self.estimator.predict(instances).tolist()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    model = SklearnModel(args.model_name, args.model_dir)
    model.load()
    kserve.ModelServer().start([model])
