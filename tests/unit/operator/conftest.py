"""Fixtures for the pure operator modules: ModelDeployments built from small spec dicts."""

from __future__ import annotations

from typing import Any

import pytest
from modeldeploy_operator.api import ModelDeployment
from modeldeploy_operator.builders import BuildContext

from tests.unit.operator.factories import IMAGE, MakeMd, md_body


@pytest.fixture
def make_md() -> MakeMd:
    """make_md(name="iris", **spec) → a validated ModelDeployment; spec dicts merge deeply."""

    def make(name: str = "iris", **spec: Any) -> ModelDeployment:
        return ModelDeployment.model_validate(md_body(name, **spec))

    return make


@pytest.fixture
def ctx() -> BuildContext:
    return BuildContext(server_image=IMAGE)
