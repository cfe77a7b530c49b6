"""A classifier that takes a while to unpickle, to watch readiness before the model is loaded."""

from __future__ import annotations

import time
from typing import Any

from sklearn.linear_model import LogisticRegression

LOAD_SECONDS = 2.0


class SlowToLoad(LogisticRegression):  # type: ignore[misc]
    def __setstate__(self, state: dict[str, Any]) -> None:
        time.sleep(LOAD_SECONDS)
        super().__setstate__(state)
