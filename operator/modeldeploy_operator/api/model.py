"""spec.model: the model to serve, named in the spec (a version and its artifact) or followed in a
registry (`source`); and the pinned model a version's pods run (`PinnedModel`)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import ConfigDict, Field, field_validator, model_validator

from modeldeploy_operator.api.base import SpecModel
from modeldeploy_operator.api.limits import MAX_URI_LENGTH, MAX_VERSION_LENGTH
from modeldeploy_operator.api.patterns import SHA256_PATTERN, VERSION_PATTERN
from modeldeploy_operator.api.rules import Rule, cel_rules
from modeldeploy_operator.api.source import ModelSource
from modeldeploy_operator.api.storage import STORAGE_URI_RULES, check_storage_uri


class ModelFormat(StrEnum):
    """Serialisation formats the model server loads."""

    SKLEARN = "sklearn"


_FORMAT_DESCRIPTION: Final = (
    "Serialisation format of the artifact; the server picks its loader from it (sklearn: a "
    "joblib or pickle file holding a fitted estimator)."
)
_VERSION_DESCRIPTION: Final = (
    "The registered version that should serve all traffic. Changing it starts a rollout from "
    "the current stable version; setting it back aborts the rollout. Must be a valid label value "
    f"(letters, digits, '.', '_', '-'; at most {MAX_VERSION_LENGTH} characters)."
)
_STORAGE_URI_DESCRIPTION: Final = (
    "Where the artifact lives: file:///PATH, pvc://CLAIM/PATH (mounted read-only, nothing "
    "copied), http(s)://HOST/PATH, s3://BUCKET/KEY, gs://BUCKET/KEY, or an MLflow registry "
    "reference models:/NAME/VERSION or models:/NAME@ALIAS."
)
_SHA256_DESCRIPTION: Final = (
    "Expected SHA-256 of the artifact (64 lowercase hex digits); the fetcher and the server "
    "refuse an artifact that does not match."
)

MODEL_ORIGIN_RULE: Final = Rule(
    "has(self.storageUri) != has(self.source)",
    "spec.model needs exactly one of storageUri (a version named here) and source (a registry "
    "followed)",
)
VERSION_WITH_STORAGE_RULE: Final = Rule(
    "has(self.version) == has(self.storageUri)",
    "spec.model.version goes with storageUri: required with it, not allowed with source (use "
    "source.mlflow.follow.version to serve a fixed registry version)",
)
SHA256_WITH_STORAGE_RULE: Final = Rule(
    "!has(self.source) || !has(self.sha256)",
    "spec.model.sha256 is not allowed with source: the operator resolves and pins the digest of "
    "the version it follows",
)
MODEL_RULES: Final = (MODEL_ORIGIN_RULE, VERSION_WITH_STORAGE_RULE, SHA256_WITH_STORAGE_RULE)


class PinnedModel(SpecModel):
    """One fixed model: what a version's pods run (status keeps it for stable and canary)."""

    format: ModelFormat = Field(description=_FORMAT_DESCRIPTION)
    version: str = Field(
        description=_VERSION_DESCRIPTION,
        pattern=VERSION_PATTERN,
        min_length=1,
        max_length=MAX_VERSION_LENGTH,
    )
    storage_uri: str = Field(
        description=_STORAGE_URI_DESCRIPTION,
        min_length=1,
        max_length=MAX_URI_LENGTH,
        json_schema_extra=cel_rules(*STORAGE_URI_RULES),
    )
    sha256: str | None = Field(
        default=None, description=_SHA256_DESCRIPTION, pattern=SHA256_PATTERN
    )

    @field_validator("storage_uri")
    @classmethod
    def _storage_uri(cls, uri: str) -> str:
        return check_storage_uri(uri)


class ModelSpec(SpecModel):
    """The model to serve: a version and its artifact named here, or a registry to follow."""

    model_config = ConfigDict(json_schema_extra=cel_rules(*MODEL_RULES))

    format: ModelFormat = Field(description=_FORMAT_DESCRIPTION)
    version: str | None = Field(
        default=None,
        description=_VERSION_DESCRIPTION + " Required with storageUri; absent with source.",
        pattern=VERSION_PATTERN,
        min_length=1,
        max_length=MAX_VERSION_LENGTH,
    )
    storage_uri: str | None = Field(
        default=None,
        description=_STORAGE_URI_DESCRIPTION + " Exactly one of storageUri and source.",
        min_length=1,
        max_length=MAX_URI_LENGTH,
        json_schema_extra=cel_rules(*STORAGE_URI_RULES),
    )
    sha256: str | None = Field(
        default=None,
        description=_SHA256_DESCRIPTION + " Not with source (the resolved digest is pinned).",
        pattern=SHA256_PATTERN,
    )
    source: ModelSource | None = Field(
        default=None,
        description="Follow a model registry instead of naming a version: the operator resolves "
        "it on each pollInterval, pins the version, artifact and sha256 it found "
        "(status.resolved) and rolls that out like a changed version.",
    )

    @field_validator("storage_uri")
    @classmethod
    def _storage_uri(cls, uri: str | None) -> str | None:
        return None if uri is None else check_storage_uri(uri)

    @model_validator(mode="after")
    def _rules(self) -> ModelSpec:
        MODEL_ORIGIN_RULE.require((self.storage_uri is None) != (self.source is None))
        VERSION_WITH_STORAGE_RULE.require((self.version is None) == (self.storage_uri is None))
        SHA256_WITH_STORAGE_RULE.require(self.source is None or self.sha256 is None)
        return self

    def pinned(self) -> PinnedModel | None:
        """The model the spec names itself; None when it follows a source (resolved in status)."""
        if self.version is None or self.storage_uri is None:
            return None
        return PinnedModel(
            format=self.format,
            version=self.version,
            storage_uri=self.storage_uri,
            sha256=self.sha256,
        )
