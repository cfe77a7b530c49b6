"""The two images, checked without Docker: the Dockerfiles' shape (multi-stage, pinned base,
non-root, one extra each), and that what they install is what the code needs — every package is
in the wheel, and every module-level import of each image's package is a dependency of the extra
that image installs."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "images"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# image → (its extra, the package whose code runs in it, its entrypoint)
IMAGE_SPECS = {
    "operator": ("operator", "operator/modeldeploy_operator", '["modeldeploy", "operator"]'),
    "server": ("serve", "serving/modeldeploy_serving", '["modeldeploy"]'),
}
NONROOT = "65532:65532"


def dockerfile(image: str) -> str:
    return (IMAGES / f"{image}.Dockerfile").read_text()


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


@pytest.mark.parametrize("image", IMAGE_SPECS)
def test_dockerfile_is_multi_stage_on_a_pinned_base_and_runs_as_nonroot(image: str) -> None:
    steps = instructions(dockerfile(image))
    args = dict(rest.split("=", 1) for word, rest in steps if word == "ARG" and "=" in rest)
    base = args["PYTHON_IMAGE"]
    # A full patch version of the Python the project targets, on a named Debian release.
    assert re.fullmatch(r"python:3\.11\.\d+-slim-(bookworm|trixie)", base), base
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build")
    assert all(f.startswith("${PYTHON_IMAGE}") for f in froms)
    final = steps[[i for i, (word, _) in enumerate(steps) if word == "FROM"][-1] :]
    assert ("USER", NONROOT) in final
    assert any(
        word == "COPY" and rest.startswith("--from=build /opt/modeldeploy") for word, rest in final
    )
    # The runtime stage installs nothing itself: no RUN after the last FROM.
    assert not [rest for word, rest in final if word == "RUN"]
    assert ("ENTRYPOINT", IMAGE_SPECS[image][2]) in final


@pytest.mark.parametrize("image", IMAGE_SPECS)
def test_dockerfile_installs_only_its_own_extra(image: str) -> None:
    extra = IMAGE_SPECS[image][0]
    installs = [rest for word, rest in instructions(dockerfile(image))
                if word == "RUN" and "pip install" in rest]  # fmt: skip
    assert len(installs) == 1
    match = re.search(r'pip install "\.\[([^\]]+)\]"', installs[0])
    assert match is not None, installs[0]
    chosen = match.group(1)
    if chosen.startswith("${"):
        args = dict(rest.split("=", 1) for word, rest in instructions(dockerfile(image))
                    if word == "ARG" and "=" in rest)  # fmt: skip
        chosen = args[chosen.strip("${}")]
    assert chosen == extra


@pytest.mark.parametrize("image", IMAGE_SPECS)
def test_build_context_is_limited_to_the_sources(image: str) -> None:
    ignore = (IMAGES / f"{image}.Dockerfile.dockerignore").read_text().splitlines()
    assert ignore[[line.strip() for line in ignore].index("*")] == "*"
    copied = {rest.split()[0] for word, rest in instructions(dockerfile(image)) if word == "COPY"
              and not rest.startswith("--from")}  # fmt: skip
    for source in copied:
        assert any(line.startswith(f"!{source}") for line in ignore), source


def test_every_package_directory_is_in_the_wheel() -> None:
    """setuptools' explicit `packages` list includes no subpackage by itself."""
    setuptools = PYPROJECT["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    directories = {
        ".".join(init.parent.relative_to(ROOT / top).parts)
        for top in ("operator", "serving")
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    missing = directories - listed
    assert not missing, f"pyproject.toml [tool.setuptools] packages lacks {sorted(missing)}"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(extra: str) -> set[str]:
    texts = [
        *PYPROJECT["project"]["dependencies"],
        *PYPROJECT["project"]["optional-dependencies"][extra],
    ]
    return {_normalized(Requirement(text).name) for text in texts}


def _module_level_imports(package: Path) -> dict[str, set[str]]:
    """Third-party top-level module → files importing it at module level (imports inside
    functions are optional features with their own extras, e.g. boto3 for s3://)."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and not top.startswith("modeldeploy"):
                    found.setdefault(top, set()).add(path.name)
    return found


# Developer tools in the operator package that never run in the operator image.
DEV_ONLY = {"demo.py", "demo_loop.py", "drift_loop.py", "local_mlflow.py", "plugin.py"}


@pytest.mark.parametrize("image", IMAGE_SPECS)
def test_every_module_level_import_is_a_dependency_of_the_images_extra(image: str) -> None:
    extra, package, _ = IMAGE_SPECS[image]
    distributions = importlib.metadata.packages_distributions()
    wanted = _requirements(extra)
    missing = {}
    for module, files in _module_level_imports(ROOT / package).items():
        files = files - DEV_ONLY
        provided_by = {_normalized(d) for d in distributions.get(module, [module])}
        if files and not provided_by & wanted:
            missing[module] = sorted(files)
    assert not missing, f"the {image} image (extra [{extra}]) cannot import {missing}"


def test_the_operator_image_has_no_scikit_learn_and_the_server_no_kopf() -> None:
    assert "scikit-learn" not in _requirements("operator")
    assert "numpy" not in _requirements("operator")
    assert "kopf" not in _requirements("serve")


def _build_arg(image: str, name: str) -> list[str]:
    """The words of a build argument's default (ARG NAME="a b c")."""
    args = dict(rest.split("=", 1) for word, rest in instructions(dockerfile(image))
                if word == "ARG" and "=" in rest)  # fmt: skip
    return args[name].strip('"').split()


# Runs in a fresh interpreter: starts what the server image starts, and loads a model in skops'
# format (which imports skops), then prints every top-level module it imported.
_SERVER_START = """
import sys
from pathlib import Path

import numpy as np
import skops.io
from sklearn.linear_model import LogisticRegression

from modeldeploy_serving.model import ServedModel

for module in sys.argv[2:]:
    __import__(module)
model_dir = Path(sys.argv[1])
skops.io.dump(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), model_dir / "model.skops")
ServedModel.load(model_dir).predict(np.array([[0.5]]))
print("\\n".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_packages_the_server_image_drops_are_never_imported(tmp_path: Path) -> None:
    unimported = _build_arg("server", "UNIMPORTED")
    assert unimported
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            _SERVER_START,
            str(tmp_path),
            *_build_arg("server", "STARTUP_MODULES"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = set(started.stdout.split())
    assert "skops" in imported and "modeldeploy_serving" in imported
    distributions = importlib.metadata.packages_distributions()
    dropped = {
        module
        for module, owners in distributions.items()
        if {_normalized(owner) for owner in owners} & {_normalized(name) for name in unimported}
    }
    assert dropped, f"none of {unimported} is installed here"
    assert not imported & dropped, f"the server imports {sorted(imported & dropped)}"
