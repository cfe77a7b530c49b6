"""The credentials a followed source names: read from its Secret as MLflow's clients send them,
handed to pods and Jobs by reference only, and never shown."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from modeldeploy_operator.api import CredentialsSecretRef
from modeldeploy_operator.kube import ApiError
from modeldeploy_operator.registry.credentials import (
    CredentialsUnavailable,
    from_secret,
    read_credentials,
    secret_env_manifest,
)

REF = CredentialsSecretRef(name="mlflow-auth")


def secret(**data: str) -> dict[str, Any]:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"kind": "Secret", "metadata": {"name": "mlflow-auth"}, "data": encoded}


def test_username_and_password_are_basic_auth() -> None:
    found = from_secret(secret(username="reader", password="s3cret"), REF)
    expected = base64.b64encode(b"reader:s3cret").decode()
    assert found.headers() == {"Authorization": f"Basic {expected}"}
    assert "s3cret" not in repr(found) and expected not in repr(found)


def test_a_token_is_a_bearer_token() -> None:
    found = from_secret(secret(token="t0ken"), REF)
    assert found.headers() == {"Authorization": "Bearer t0ken"}
    assert "t0ken" not in repr(found)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "Secret mlflow-auth (credentialsSecretRef) does not exist"),
        (secret(username="reader"), "needs the keys username and password, or token (it holds "
         "username)"),
        (secret(user="reader", pass_="x"), "(it holds pass_, user)"),
        ({"metadata": {"name": "mlflow-auth"}}, "(it holds no keys)"),
        (secret(username="reader", password="s3cret", token="t0ken"), "holds both token and"),
    ],
)  # fmt: skip
def test_a_missing_secret_or_key_says_which_never_a_value(
    body: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(CredentialsUnavailable) as raised:
        from_secret(body, REF)
    assert message in str(raised.value)
    for value in ("s3cret", "t0ken"):
        assert value not in str(raised.value)


def test_no_ref_reads_nothing_and_a_forbidden_read_names_the_permission() -> None:
    async def refused(namespace: str, name: str) -> dict[str, Any] | None:
        raise ApiError(403, "Forbidden", 'secrets "mlflow-auth" is forbidden')

    async def unreachable(namespace: str, name: str) -> dict[str, Any] | None:
        raise AssertionError("no Secret is read without a ref")

    assert asyncio.run(read_credentials(unreachable, "models", None)) is None
    with pytest.raises(CredentialsUnavailable, match="needs get on secrets in models"):
        asyncio.run(read_credentials(refused, "models", REF))


def test_pods_and_jobs_get_each_key_by_reference_optional() -> None:
    assert secret_env_manifest(None) == []
    assert secret_env_manifest(REF) == [
        {
            "name": env,
            "valueFrom": {"secretKeyRef": {"name": "mlflow-auth", "key": key, "optional": True}},
        }
        for env, key in (
            ("MLFLOW_TRACKING_USERNAME", "username"),
            ("MLFLOW_TRACKING_PASSWORD", "password"),
            ("MLFLOW_TRACKING_TOKEN", "token"),
        )
    ]
