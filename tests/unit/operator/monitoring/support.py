"""What the monitoring tests share: metric names in PromQL, promtool, and the Prometheus
Operator's published CRD schemas."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian: prometheus)")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")
_CALL = re.compile(r"\s*\(")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "Inf", "NaN"}
    | {"by", "without", "on", "ignoring", "group_left", "group_right"}
)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (not functions, keywords or label names)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    return {
        match.group()
        for match in _IDENTIFIER.finditer(text)
        if match.group() not in _KEYWORDS and not _CALL.match(text, match.end())
    }


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def check_rules(groups: list[dict[str, Any]], tmp_path: Path) -> None:
    """`promtool check rules` on `groups`; fails the test with promtool's message."""
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# The Prometheus Operator's CRDs, from the Go module cluster/platform-crds.sh installs.

PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.85.0"


def _module_cache() -> Path:
    configured = os.environ.get("GOMODCACHE")
    if configured:
        return Path(configured)
    gopath = os.environ.get("GOPATH", str(Path.home() / "go")).split(os.pathsep)[0]
    return Path(gopath) / "pkg" / "mod"


def crd_schema(plural: str) -> dict[str, Any]:
    """The openAPIV3Schema of monitoring.coreos.com/v1 `plural`; skips when not downloaded."""
    path = (
        _module_cache()
        / PROMETHEUS_OPERATOR
        / "example"
        / "prometheus-operator-crd"
        / f"monitoring.coreos.com_{plural}.yaml"
    )
    if not path.is_file():
        pytest.skip(f"{path} not in the Go module cache (cluster/platform-crds.sh fetches it)")
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def schema_errors(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Where `value` breaks a structural schema. Unknown fields count: the apiserver would
    silently prune them, which for a builder is a bug."""
    if schema.get("x-kubernetes-int-or-string"):
        return [] if isinstance(value, int | str) else [f"{path}: not an int or string"]
    if "anyOf" in schema and "type" not in schema:
        options = [schema_errors(value, option, path) for option in schema["anyOf"]]
        return [] if any(not errors for errors in options) else options[0]
    kind = schema.get("type")
    if kind is not None:
        if isinstance(value, bool) and kind in ("integer", "number"):
            return [f"{path}: a boolean where {kind} is expected"]
        if not isinstance(value, _TYPES[kind]):
            return [f"{path}: {type(value).__name__} where {kind} is expected"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}.{name}: required")
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                errors += schema_errors(item, extra, f"{path}.{key}")
            elif (
                "properties" in schema  # metadata: the apiserver's own schema applies
                and not schema.get("x-kubernetes-preserve-unknown-fields")
            ):
                errors.append(f"{path}.{key}: unknown field (the apiserver would prune it)")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{path}[{index}]")
    return errors
