"""`modeldeploy fetch s3://...` against moto's S3 server on loopback — an S3 *emulator* speaking
the real HTTP API to real boto3, not AWS — and the clear errors when an extra is missing."""

from __future__ import annotations

import hashlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import joblib
import numpy as np
import pytest
from modeldeploy_serving.drift import build_reference
from modeldeploy_serving.errors import FetchError
from modeldeploy_serving.fetch import fetch
from modeldeploy_serving.model import ServedModel
from moto import server as moto_server
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from tests.support.ports import free_port

X, Y = load_iris(return_X_y=True)
MODEL = LogisticRegression(max_iter=1000).fit(X, Y)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, bytes]:
    for key, value in {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    s3 = boto3.client("s3")
    name = f"models-{free_port()}"
    s3.create_bucket(Bucket=name)
    buffer = io.BytesIO()
    joblib.dump(MODEL, buffer)
    data = buffer.getvalue()
    s3.put_object(Bucket=name, Key="iris/2/model.joblib", Body=data)
    reference = build_reference(X, ["a", "b", "c", "d"]).to_json()
    s3.put_object(Bucket=name, Key="iris/2/reference.json", Body=reference)
    s3.put_object(Bucket=name, Key="iris/2/extra/notes.txt", Body=b"kept")
    return name, data


def test_an_object_and_its_reference(bucket: tuple[str, bytes], tmp_path: Path) -> None:
    name, data = bucket
    digest = hashlib.sha256(data).hexdigest()
    fetch(f"s3://{name}/iris/2/model.joblib", tmp_path / "one", digest)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [
        "model.joblib",
        "reference.json",
    ]
    model = ServedModel.load(tmp_path / "one", digest)
    assert np.array_equal(model.predict(X), MODEL.predict(X))


def test_a_prefix_is_copied_whole(bucket: tuple[str, bytes], tmp_path: Path) -> None:
    name, _ = bucket
    fetch(f"s3://{name}/iris/2/", tmp_path / "all")
    assert (tmp_path / "all" / "extra" / "notes.txt").read_bytes() == b"kept"
    assert (tmp_path / "all" / "model.joblib").is_file()


def test_failures_leave_nothing(bucket: tuple[str, bytes], tmp_path: Path) -> None:
    name, _ = bucket
    with pytest.raises(FetchError, match="refusing"):
        fetch(f"s3://{name}/iris/2/model.joblib", tmp_path / "a", "0" * 64)
    with pytest.raises(FetchError, match=f"s3://{name}/iris/9/model.joblib"):
        fetch(f"s3://{name}/iris/9/model.joblib", tmp_path / "b")
    with pytest.raises(FetchError, match="holds no objects"):
        fetch(f"s3://{name}/nothing/", tmp_path / "c")
    assert list(tmp_path.iterdir()) == []


def test_missing_extras_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(FetchError, match=r"modeldeploy\[s3\]"):
        fetch("s3://bucket/model.joblib", tmp_path / "s3")
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)
    monkeypatch.setitem(sys.modules, "google.cloud", None)
    with pytest.raises(FetchError, match=r"modeldeploy\[gcs\]"):
        fetch("gs://bucket/model.joblib", tmp_path / "gs")
    assert list(tmp_path.iterdir()) == []
