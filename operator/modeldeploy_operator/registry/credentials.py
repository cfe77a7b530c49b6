"""An MLflow tracking server's credentials: `spec.model.source.mlflow.credentialsSecretRef`.

The operator reads the Secret (it needs `get` on secrets for nothing else) and sends what it
holds as MLflow's clients do: `token` as a bearer token, `username` and `password` as HTTP basic
auth. Pods and Jobs get the same keys as MLflow's environment variables by reference to the
Secret (`secret_env`), never by value; no value is ever logged or written into a status.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from modeldeploy_serving.contract import (
    ENV_MLFLOW_TRACKING_PASSWORD,
    ENV_MLFLOW_TRACKING_TOKEN,
    ENV_MLFLOW_TRACKING_URI,
    ENV_MLFLOW_TRACKING_USERNAME,
)

from modeldeploy_operator.api import (
    CredentialsSecretRef,
    EnvVar,
    EnvVarSource,
    MlflowSource,
    SecretKeySelector,
)
from modeldeploy_operator.kube import ApiError

USERNAME_KEY: Final = "username"
PASSWORD_KEY: Final = "password"
TOKEN_KEY: Final = "token"
# Each key of the Secret, and the variable MLflow's clients (and `modeldeploy fetch`) read it from.
SECRET_ENV: Final = (
    (USERNAME_KEY, ENV_MLFLOW_TRACKING_USERNAME),
    (PASSWORD_KEY, ENV_MLFLOW_TRACKING_PASSWORD),
    (TOKEN_KEY, ENV_MLFLOW_TRACKING_TOKEN),
)

# Reads a Secret: its manifest, None when it does not exist (`KubeClient.get`).
SecretReader = Callable[[str, str], Awaitable[dict[str, Any] | None]]


class CredentialsUnavailable(Exception):
    """The Secret is missing, unreadable, or does not hold usable credentials. The message names
    the Secret and its keys, never a value."""


@dataclass(frozen=True)
class RegistryCredentials:
    """The Authorization header for the tracking server (left out of repr: never logged)."""

    authorization: str = field(repr=False)

    def headers(self) -> dict[str, str]:
        return {"Authorization": self.authorization}


def from_secret(secret: dict[str, Any] | None, ref: CredentialsSecretRef) -> RegistryCredentials:
    """The credentials the Secret holds: `token`, or `username` and `password`."""
    if secret is None:
        raise CredentialsUnavailable(f"Secret {ref.name} (credentialsSecretRef) does not exist")
    values: dict[str, str] = {}
    for key, encoded in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, TypeError) as err:
            raise CredentialsUnavailable(f"Secret {ref.name}: key {key} is not UTF-8 text") from err
    token = values.get(TOKEN_KEY)
    username, password = values.get(USERNAME_KEY), values.get(PASSWORD_KEY)
    basic = username is not None or password is not None
    if token and basic:
        # MLflow's Python client prefers basic auth and `modeldeploy fetch` the token: with one
        # of them there is no doubt which the trainer, the evaluator and the pods send.
        raise CredentialsUnavailable(
            f"Secret {ref.name} holds both {TOKEN_KEY} and {USERNAME_KEY}/{PASSWORD_KEY}: keep "
            "one of them"
        )
    if token:
        return RegistryCredentials(f"Bearer {token}")
    if username and password:
        pair = base64.b64encode(f"{username}:{password}".encode()).decode()
        return RegistryCredentials(f"Basic {pair}")
    held = ", ".join(sorted(values)) or "no keys"
    raise CredentialsUnavailable(
        f"Secret {ref.name} needs the keys {USERNAME_KEY} and {PASSWORD_KEY}, or {TOKEN_KEY} "
        f"(it holds {held})"
    )


async def read_credentials(
    read: SecretReader, namespace: str, ref: CredentialsSecretRef | None
) -> RegistryCredentials | None:
    """The credentials `ref` names in `namespace`; None when the source has none."""
    if ref is None:
        return None
    try:
        secret = await read(namespace, ref.name)
    except ApiError as err:
        if err.status != 403:
            raise
        raise CredentialsUnavailable(
            f"the operator may not read Secret {ref.name} (it needs get on secrets in "
            f"{namespace}): {err.message}"
        ) from err
    return from_secret(secret, ref)


def secret_env(ref: CredentialsSecretRef | None) -> list[EnvVar]:
    """MLflow's credential variables, each from its key of the Secret. Optional: a Secret holds
    either the token or the username and password, and a variable whose key is absent is left
    unset (a missing Secret or key is the operator's to report, on the ModelDeployment)."""
    if ref is None:
        return []
    return [
        EnvVar(
            name=env,
            value_from=EnvVarSource(
                secret_key_ref=SecretKeySelector(name=ref.name, key=key, optional=True)
            ),
        )
        for key, env in SECRET_ENV
    ]


def secret_env_manifest(ref: CredentialsSecretRef | None) -> list[dict[str, Any]]:
    """`secret_env` as a container's env entries."""
    return [
        var.model_dump(mode="json", by_alias=True, exclude_none=True) for var in secret_env(ref)
    ]


def serving_env(source: MlflowSource) -> list[EnvVar]:
    """What the serving pods' `modeldeploy fetch` needs to download the pinned model file from
    an authenticating tracking server: its address (credentials go to URLs under it only) and
    the credential variables. None without a credentials Secret: the pods stay as they were."""
    if source.credentials_secret_ref is None:
        return []
    return [
        EnvVar(name=ENV_MLFLOW_TRACKING_URI, value=source.tracking_uri),
        *secret_env(source.credentials_secret_ref),
    ]
