"""spec.model: the registered model version to serve and where its artifact lives."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator

from modeldeploy_operator.api.base import SpecModel
from modeldeploy_operator.api.limits import MAX_URI_LENGTH, MAX_VERSION_LENGTH
from modeldeploy_operator.api.patterns import SHA256_PATTERN, VERSION_PATTERN
from modeldeploy_operator.api.rules import cel_rules
from modeldeploy_operator.api.storage import STORAGE_URI_RULES, check_storage_uri


class ModelFormat(StrEnum):
    """Serialisation formats the model server loads."""

    SKLEARN = "sklearn"


class ModelSpec(SpecModel):
    """The registered model version to serve and where its artifact lives."""

    format: ModelFormat = Field(
        description="Serialisation format of the artifact; the server picks its loader from it "
        "(sklearn: a joblib or pickle file holding a fitted estimator)."
    )
    version: str = Field(
        description="The registered version that should serve all traffic. Changing it starts a "
        "rollout from the current stable version; setting it back aborts the rollout. Must be a "
        "valid label value (letters, digits, '.', '_', '-'; at most "
        f"{MAX_VERSION_LENGTH} characters).",
        pattern=VERSION_PATTERN,
        min_length=1,
        max_length=MAX_VERSION_LENGTH,
    )
    storage_uri: str = Field(
        description="Where the artifact lives: file:///PATH, pvc://CLAIM/PATH (mounted read-only, "
        "nothing copied), http(s)://HOST/PATH, s3://BUCKET/KEY, gs://BUCKET/KEY, or an MLflow "
        "registry reference models:/NAME/VERSION or models:/NAME@ALIAS.",
        min_length=1,
        max_length=MAX_URI_LENGTH,
        json_schema_extra=cel_rules(*STORAGE_URI_RULES),
    )
    sha256: str | None = Field(
        default=None,
        description="Expected SHA-256 of the artifact (64 lowercase hex digits); the fetcher and "
        "the server refuse an artifact that does not match.",
        pattern=SHA256_PATTERN,
    )

    @field_validator("storage_uri")
    @classmethod
    def _storage_uri(cls, uri: str) -> str:
        return check_storage_uri(uri)
