"""deploy/argocd/health.lua, run by the real Lua interpreter against sample ModelDeployments
(tests/gitops/samples: each holds the object and the health Argo CD must show)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from modeldeploy_operator import api

from tests.gitops.lua import HEALTH_SCRIPT, health, lua_value

SAMPLES = Path(__file__).with_name("samples")
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((SAMPLES / name).read_text()))


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.yaml")))
def test_sample(name: str, tmp_path: Path) -> None:
    sample = load(name)
    got = health(sample["object"], tmp_path)
    assert got.status in ARGO_STATUSES
    assert (got.status, got.message) == (sample["expect"]["status"], sample["expect"]["message"])


def test_the_samples_cover_every_argo_status_the_script_can_return() -> None:
    script = HEALTH_SCRIPT.read_text()
    returned = set(re.findall(r'hs\.status = "(\w+)"', script))
    expected = {load(p.name)["expect"]["status"] for p in SAMPLES.glob("*.yaml")}
    assert returned == expected


def test_the_sample_specs_are_valid_model_deployments() -> None:
    for path in SAMPLES.glob("*.yaml"):
        obj = load(path.name)["object"]
        api.ModelDeploymentSpec.model_validate(obj["spec"])


def test_every_phase_and_pause_reason_of_the_operator_is_handled() -> None:
    script = HEALTH_SCRIPT.read_text()
    for phase in api.Phase:
        assert f'"{phase.value}"' in script, phase
    for reason in api.PauseReason:
        assert f'"{reason.value}"' in script, reason


def test_every_phase_maps_to_a_definite_health(tmp_path: Path) -> None:
    """No phase the operator writes falls through to Unknown."""
    base = load("ready.yaml")["object"]
    for phase in api.Phase:
        obj = {**base, "status": {**base["status"], "phase": phase.value}}
        assert health(obj, tmp_path).status != "Unknown", phase


def test_lua_values_round_trip_through_the_interpreter(tmp_path: Path) -> None:
    """The harness's encoding keeps types and text (a guard for the samples above)."""
    script = tmp_path / "echo.lua"
    script.write_text(
        "local s = obj.text .. '|' .. tostring(obj.n) .. '|' .. tostring(obj.flag) .. '|'"
        " .. tostring(#obj.list) .. '|' .. tostring(obj.absent)\n"
        "return {status = 'Healthy', message = s}\n"
    )
    obj = {"text": 'a "quoted" \\ é\nline', "n": 3, "flag": False, "list": [1, 2], "absent": None}
    got = health(obj, tmp_path, script)
    assert got.message == 'a "quoted" \\ é\nline|3|false|2|nil'
    assert lua_value({"a": None}) == "{}"
