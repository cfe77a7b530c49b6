"""spec.model.source: a model registry the operator follows instead of a version named in the spec.

The operator resolves what the source names (an alias, or a fixed version) on each pollInterval,
pins what it found (version, artifact, sha256) in status.resolved, and rolls that out like a
changed spec.model.version. The spec is never written: a GitOps repository that says "follow
champion" stays in sync while versions change underneath.
"""

from __future__ import annotations

from typing import Final

from pydantic import ConfigDict, Field, model_validator

from modeldeploy_operator.api.base import SpecModel
from modeldeploy_operator.api.limits import MAX_URI_LENGTH, MAX_VERSION_LENGTH
from modeldeploy_operator.api.patterns import DNS_SUBDOMAIN_PATTERN, HTTP_URL_PATTERN
from modeldeploy_operator.api.rules import Rule, cel_rules
from modeldeploy_operator.api.units import check_duration_range, duration_field

# MLflow's alias grammar (the same as in models:/NAME@ALIAS URIs).
ALIAS_PATTERN: Final = r"^[A-Za-z0-9_-]+$"
# MLflow numbers registered versions 1, 2, 3...
REGISTERED_VERSION_PATTERN: Final = r"^[1-9][0-9]*$"
MAX_REGISTERED_MODEL_LENGTH: Final = 256
MAX_ALIAS_LENGTH: Final = 255
MAX_RETRY_LENGTH: Final = 63

MIN_POLL_INTERVAL: Final = "5s"

FOLLOW_ONE_RULE: Final = Rule(
    "has(self.alias) != has(self.version)",
    "spec.model.source.mlflow.follow needs exactly one of alias and version",
)


class MlflowFollow(SpecModel):
    """Which registered version to serve: the one an alias points at, or a fixed one."""

    model_config = ConfigDict(json_schema_extra=cel_rules(FOLLOW_ONE_RULE))

    alias: str | None = Field(
        default=None,
        description="Serve the version this alias points at (e.g. champion); moving the alias "
        "in the registry starts a rollout.",
        pattern=ALIAS_PATTERN,
        max_length=MAX_ALIAS_LENGTH,
    )
    version: str | None = Field(
        default=None,
        description="Serve this registered version (its artifact and sha256 are still resolved "
        "from the registry and pinned).",
        pattern=REGISTERED_VERSION_PATTERN,
        max_length=MAX_VERSION_LENGTH,
    )

    @model_validator(mode="after")
    def _rules(self) -> MlflowFollow:
        FOLLOW_ONE_RULE.require((self.alias is None) != (self.version is None))
        return self

    def describe(self) -> str:
        """How a person names what is followed: @champion or version 7."""
        return f"@{self.alias}" if self.alias is not None else f"version {self.version}"


class CredentialsSecretRef(SpecModel):
    """A Secret in the ModelDeployment's namespace holding the tracking server's credentials:
    keys `username` and `password` (HTTP basic auth, as `mlflow server --app-name basic-auth`
    asks), or `token` (a bearer token), never both. The operator reads it; pods and Jobs get its
    keys as environment variables from the Secret (MLFLOW_TRACKING_USERNAME, _PASSWORD, _TOKEN),
    never its values."""

    name: str = Field(
        description="Name of the Secret.", pattern=DNS_SUBDOMAIN_PATTERN, max_length=253
    )


class MlflowSource(SpecModel):
    """An MLflow tracking server's model registry (REST API 2.0, MLflow 2 and 3)."""

    tracking_uri: str = Field(
        description="The tracking server's http(s) address, as the operator reaches it (e.g. "
        "http://mlflow.mlflow:5000). Artifacts are read through its artifact proxy "
        "(mlflow-artifacts:), which serving pods download from too.",
        pattern=HTTP_URL_PATTERN,
        max_length=MAX_URI_LENGTH,
    )
    registered_model: str = Field(
        description="The registered model's name.",
        min_length=1,
        max_length=MAX_REGISTERED_MODEL_LENGTH,
        pattern=r"^[^/@\s]+$",
    )
    follow: MlflowFollow = Field(description="An alias to follow, or a fixed version.")
    poll_interval: str = duration_field(
        "30s",
        description="How often the registry is asked what the alias points at (at least "
        f"{MIN_POLL_INTERVAL}).",
        path="spec.model.source.mlflow.pollInterval",
        minimum=MIN_POLL_INTERVAL,
    )
    credentials_secret_ref: CredentialsSecretRef | None = Field(
        default=None,
        description="The Secret (this namespace) with the tracking server's credentials "
        "(`username` and `password`, or `token`); absent: no authentication.",
    )

    @model_validator(mode="after")
    def _rules(self) -> MlflowSource:
        check_duration_range(
            self.poll_interval, "spec.model.source.mlflow.pollInterval", MIN_POLL_INTERVAL
        )
        return self

    def describe(self) -> str:
        """The followed reference, spelled like a models:/ URI: iris@champion or iris/7."""
        follow = self.follow
        suffix = f"@{follow.alias}" if follow.alias is not None else f"/{follow.version}"
        return f"{self.registered_model}{suffix}"


class ModelSource(SpecModel):
    """Where the version to serve comes from, instead of spec.model.version and storageUri."""

    mlflow: MlflowSource = Field(description="Follow an MLflow model registry.")
    retry: str | None = Field(
        default=None,
        description="Any value; changing it retries the versions in status.rejected (a version "
        "whose canary failed is otherwise not retried while the alias still points at it).",
        max_length=MAX_RETRY_LENGTH,
    )
