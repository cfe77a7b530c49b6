"""`modeldeploy fetch` from local paths, pvc:// mounts and a real HTTP server: the model lands
whole and verified, or DEST is left as it was."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import orjson
import pytest
from modeldeploy_serving import fetch as fetch_command
from modeldeploy_serving.drift import build_reference
from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch import FetchOptions, fetch
from modeldeploy_serving.model import ServedModel
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.serving.http_files import serve_files

ROOT = Path(__file__).resolve().parents[2]
X, Y = load_iris(return_X_y=True)
MODEL = LogisticRegression(max_iter=1000).fit(X, Y)
REFERENCE = build_reference(X, ["sepal_l", "sepal_w", "petal_l", "petal_w"]).to_json()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("store") / "iris" / "2"
    directory.mkdir(parents=True)
    joblib.dump(MODEL, directory / "iris-v2.joblib")
    (directory / "reference.json").write_bytes(REFERENCE)
    return directory / "iris-v2.joblib"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.rglob("*fetch-*")]


def _serves_the_model(model_dir: Path) -> None:
    model = ServedModel.load(model_dir)
    assert np.array_equal(model.predict(X), MODEL.predict(X))


def test_file_uri_of_a_file_brings_the_reference_along(artifact: Path, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    path = fetch(f"file://{artifact}", dest, _sha(artifact))
    assert path == dest / "model.joblib"
    assert sorted(p.name for p in dest.iterdir()) == ["model.joblib", "reference.json"]
    _serves_the_model(dest)
    assert _leftovers(tmp_path) == []


def test_pvc_uri_maps_under_the_mount_root(artifact: Path, tmp_path: Path) -> None:
    claims = artifact.parents[2]  # <root>/<claim>/iris/2/iris-v2.joblib
    claim = artifact.parents[1].parent.name
    dest = tmp_path / "models"
    options = FetchOptions(pvc_root=claims.parent)
    fetch(f"pvc://{claim}/iris/2/iris-v2.joblib", dest, _sha(artifact), options)
    assert sorted(p.name for p in dest.iterdir()) == ["model.joblib", "reference.json"]
    _serves_the_model(dest)
    # a directory is copied as it is
    layout = claims.parent / claim / "layout"
    layout.mkdir()
    (layout / "model.joblib").write_bytes(artifact.read_bytes())
    (layout / "extra").mkdir()
    (layout / "extra" / "notes.txt").write_text("kept")
    fetch(f"pvc://{claim}/layout", tmp_path / "dir", None, options)
    assert (tmp_path / "dir" / "extra" / "notes.txt").read_text() == "kept"
    _serves_the_model(tmp_path / "dir")
    with pytest.raises(FetchError, match="volume mounted"):
        fetch(f"pvc://{claim}/iris/3/model.joblib", tmp_path / "other", None, options)


def test_a_digest_mismatch_leaves_dest_untouched(artifact: Path, tmp_path: Path) -> None:
    dest = tmp_path / "models"
    with pytest.raises(FetchError, match="refusing"):
        fetch(f"file://{artifact}", dest, "0" * 64)
    assert not dest.exists()
    assert _leftovers(tmp_path) == []
    # DEST as an init container sees it: an existing (mounted) directory with old content
    dest.mkdir()
    (dest / "model.joblib").write_bytes(b"old")
    with pytest.raises(FetchError, match="refusing"):
        fetch(f"file://{artifact}", dest, "1" * 64)
    assert [p.name for p in dest.iterdir()] == ["model.joblib"]
    assert (dest / "model.joblib").read_bytes() == b"old"
    fetch(f"file://{artifact}", dest, _sha(artifact))
    assert sorted(p.name for p in dest.iterdir()) == ["model.joblib", "reference.json"]
    _serves_the_model(dest)


def test_something_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "README").write_text("no model here")
    with pytest.raises(FetchError, match=r"no model\.joblib"):
        fetch(f"file://{source}", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


def test_bad_uris(tmp_path: Path) -> None:
    for uri, message in [
        ("ftp://host/x", "unsupported"),
        ("models:/iris", "models:/NAME/VERSION"),
        ("models:/iris/latest", "models:/NAME/VERSION"),
        ("pvc:///x", "pvc://CLAIM/PATH"),
    ]:
        with pytest.raises(FetchError, match=message):
            fetch(uri, tmp_path / "d")


def test_http_streams_resumes_and_checks_size(artifact: Path, tmp_path: Path) -> None:
    data = artifact.read_bytes()
    with serve_files() as server:
        server.files["/m/model.joblib"] = data
        server.files["/m/reference.json"] = REFERENCE
        server.files["/n/model.skops"] = b"short"
        server.break_once.add("/m/model.joblib")
        dest = tmp_path / "a"
        fetch(f"{server.url}/m/model.joblib", dest, _sha(artifact))
        _serves_the_model(dest)
        assert (dest / "reference.json").read_bytes() == REFERENCE
        assert [r[0] for r in server.requests].count("/m/model.joblib") == 2

        # a large file broken halfway resumes where it stopped, with Range
        blob = np.random.default_rng(0).bytes(4 << 20)
        server.files["/big/model.skops"] = blob
        server.break_once.add("/big/model.skops")
        fetch(f"{server.url}/big/model.skops", tmp_path / "big", hashlib.sha256(blob).hexdigest())
        assert (tmp_path / "big" / "model.skops").read_bytes() == blob
        first, second = [r[1] for r in server.requests if r[0] == "/big/model.skops"]
        assert first is None and second is not None
        assert 0 < int(second.removeprefix("bytes=").rstrip("-")) <= len(blob) // 2

        # a server that never delivers what it announces: refused, nothing left behind
        server.always_short.add("/n/model.skops")
        with pytest.raises(FetchError, match="failed after"):
            fetch(f"{server.url}/n/model.skops", tmp_path / "b")
        assert not (tmp_path / "b").exists() and _leftovers(tmp_path) == []

        with pytest.raises(FetchError, match="HTTP 404"):
            fetch(f"{server.url}/absent.joblib", tmp_path / "c")
        with pytest.raises(FetchError, match="max-bytes"):
            fetch(f"{server.url}/m/model.joblib", tmp_path / "d", None, FetchOptions(max_bytes=100))
        assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_a_sibling_that_is_not_a_reference_is_skipped_with_a_warning(
    artifact: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Optional means optional: a reference.json beside the model that answers a login page,
    401, 500, or holds something else than a reference is left out, and the model is fetched
    (serve then runs without drift metrics instead of exiting)."""
    data = artifact.read_bytes()
    with serve_files() as server:
        for case in ("html", "unauthorized", "broken", "other"):
            server.files[f"/{case}/model.joblib"] = data
        server.files["/html/reference.json"] = b"<!doctype html><html>Sign in</html>"
        server.statuses["/unauthorized/reference.json"] = 401
        server.statuses["/broken/reference.json"] = 500
        server.files["/other/reference.json"] = b'{"format": "something else"}'
        for case in ("html", "unauthorized", "broken", "other"):
            dest = tmp_path / case
            caplog.clear()
            with caplog.at_level("WARNING", logger="modeldeploy.fetch"):
                fetch(f"{server.url}/{case}/model.joblib", dest, _sha(artifact))
            assert sorted(p.name for p in dest.iterdir()) == ["model.joblib"], case
            _serves_the_model(dest)
            assert any("reference.json" in r.getMessage() for r in caplog.records), case
    local = tmp_path / "store"
    local.mkdir()
    (local / "model.joblib").write_bytes(data)
    (local / "reference.json").write_bytes(b"<html></html>")
    fetch(f"file://{local / 'model.joblib'}", tmp_path / "local")
    assert sorted(p.name for p in (tmp_path / "local").iterdir()) == ["model.joblib"]


def test_http_restarts_when_the_server_ignores_range(artifact: Path, tmp_path: Path) -> None:
    data = artifact.read_bytes()
    with serve_files() as server:
        server.files["/model.joblib"] = data
        server.break_once.add("/model.joblib")
        server.ignore_range = True
        fetch(f"{server.url}/model.joblib", tmp_path / "m", _sha(artifact))
        _serves_the_model(tmp_path / "m")


def test_the_command_line(artifact: Path, tmp_path: Path) -> None:
    dest = tmp_path / "cli"
    assert fetch_command.main([f"file://{artifact}", str(dest), "--sha256", _sha(artifact)]) == 0
    assert (dest / "model.joblib").is_file()
    assert (
        fetch_command.main([f"file://{artifact}", str(tmp_path / "x"), "--sha256", "f" * 64]) == 1
    )
    assert fetch_command.main(["s3x://a/b", str(tmp_path / "y")]) == 1


def test_credentials_never_reach_the_logs_or_the_errors(artifact: Path, tmp_path: Path) -> None:
    """Userinfo (`user:password@`) and query strings (a presigned URL's signature) are redacted
    in every line the command prints, httpx's request lines included, and in its errors."""
    secrets = ("alice", "hunter2", "s3cr3tsig")

    def command(url: str, dest: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "modeldeploy_serving.fetch", url, str(dest)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=120,
        )

    with serve_files() as server:
        server.files["/m/model.joblib"] = artifact.read_bytes()
        authority = server.url.removeprefix("http://")
        signed = f"http://alice:hunter2@{authority}/m/model.joblib?X-Amz-Signature=s3cr3tsig"
        missing = f"http://alice:hunter2@{authority}/nowhere/model.joblib?X-Amz-Signature=s3cr3tsig"
        fetched = command(signed, tmp_path / "ok")
        failed = command(missing, tmp_path / "missing")
        with pytest.raises(FetchError) as raised:
            fetch(missing, tmp_path / "api")
    assert fetched.returncode == 0, fetched.stderr
    _serves_the_model(tmp_path / "ok")
    assert failed.returncode == 1
    for run, path in ((fetched, "/m/model.joblib"), (failed, "/nowhere/model.joblib")):
        output = run.stdout + run.stderr
        # the lines are still there, with the URL's secrets replaced
        assert f"http://***@{authority}{path}?***" in output, output
        assert not [secret for secret in secrets if secret in output], output
    assert f"{authority}/nowhere/model.joblib" in str(raised.value)
    assert not [secret for secret in secrets if secret in str(raised.value)], raised.value


def test_a_redirect_from_https_to_http_is_refused(
    artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = artifact.read_bytes()
    with serve_files() as plain, serve_files(tls=True) as secure:
        assert secure.ca_file is not None
        monkeypatch.setenv("SSL_CERT_FILE", str(secure.ca_file))
        plain.files["/m/model.joblib"] = data
        secure.redirects["/m/model.joblib"] = f"{plain.url}/m/model.joblib"
        with pytest.raises(FetchError, match="refusing to follow a redirect from https to http"):
            fetch(f"{secure.url}/m/model.joblib", tmp_path / "downgraded")
        assert plain.requests == []
        # https → https is a redirect like any other
        secure.files["/new/model.joblib"] = data
        secure.redirects["/old/model.joblib"] = f"{secure.url}/new/model.joblib"
        fetch(f"{secure.url}/old/model.joblib", tmp_path / "moved", _sha(artifact))
    _serves_the_model(tmp_path / "moved")
    assert not (tmp_path / "downgraded").exists()


@pytest.mark.parametrize("where", ["file", "path", "pvc", "registry"])
def test_a_registry_cannot_send_fetch_to_local_files_or_back_to_itself(
    artifact: Path, tmp_path: Path, where: str
) -> None:
    """A registered version's artifact location comes from the registry, a remote party: it
    may name its artifact proxy or an object store, never a path of the pod (file:///etc) nor
    another registry URI (a loop)."""
    local = tmp_path / "pod-files"
    local.mkdir()
    (local / "model.joblib").write_bytes(artifact.read_bytes())  # fetched today, if allowed
    artifact_uri = {
        "file": f"file://{local}",
        "path": str(local),
        "pvc": "pvc://pod-files/",
        "registry": "models:/iris/1",
    }[where]
    with serve_files() as registry:
        registry.files["/api/2.0/mlflow/model-versions/get-download-uri"] = orjson.dumps(
            {"artifact_uri": artifact_uri}
        )
        options = FetchOptions(mlflow_tracking_uri=registry.url, pvc_root=tmp_path)
        with pytest.raises(FetchError, match="refusing"):
            fetch("models:/iris/1", tmp_path / "dest", None, options)
    assert not (tmp_path / "dest").exists()


def test_the_tracking_servers_credentials_go_to_its_urls_only(
    artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model file pinned from an authenticating MLflow is fetched with MLflow's credentials
    (the operator gives the pod MLFLOW_TRACKING_URI and the Secret's keys); a URL anywhere
    else, the same host on another port included, never sees them."""
    data = artifact.read_bytes()
    path = "/api/2.0/mlflow-artifacts/artifacts/1/models/m-1/artifacts/model.joblib"
    with serve_files() as tracking, serve_files() as elsewhere:
        tracking.authorization = "Basic " + base64.b64encode(b"reader:s3cret").decode()
        tracking.files[path] = data
        elsewhere.files["/m/model.joblib"] = data
        monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking.url)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "reader")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
        fetch(f"{tracking.url}{path}", tmp_path / "pinned", _sha(artifact))
        _serves_the_model(tmp_path / "pinned")
        fetch(f"{elsewhere.url}/m/model.joblib", tmp_path / "other", _sha(artifact))
        assert elsewhere.authorizations and set(elsewhere.authorizations) == {None}
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "t0ken")
        with pytest.raises(FetchError, match="HTTP 401"):
            fetch(f"{tracking.url}{path}", tmp_path / "token")
        assert tracking.authorizations[-1] == "Bearer t0ken"
