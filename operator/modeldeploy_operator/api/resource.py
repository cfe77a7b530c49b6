"""The ModelDeployment resource: its group, version and names, the metadata the operator reads,
and the whole object as read from the apiserver."""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from modeldeploy_operator.api.limits import MAX_NAME_LENGTH
from modeldeploy_operator.api.patterns import NAME_PATTERN
from modeldeploy_operator.api.rules import Rule, cel_matches, cel_string
from modeldeploy_operator.api.spec import ModelDeploymentSpec
from modeldeploy_operator.api.status import ModelDeploymentStatus

GROUP: Final = "modeldeploy.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ModelDeployment"
PLURAL: Final = "modeldeployments"
SINGULAR: Final = "modeldeployment"
SHORT_NAMES: Final = ("md", "mdep")
CATEGORIES: Final = ("modeldeploy",)


class ObjectMeta(BaseModel):
    """The metadata the operator reads (everything else is ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    name: str
    namespace: str = "default"
    uid: str = ""
    generation: int = 0
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


NAME_RULE: Final = Rule(
    f"self.metadata.name.matches({cel_string(NAME_PATTERN)})"
    f" && size(self.metadata.name) <= {MAX_NAME_LENGTH}",
    "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a "
    f"letter, at most {MAX_NAME_LENGTH} characters): it names the model's Service",
)


class ModelDeployment(BaseModel):
    """A ModelDeployment as read from the apiserver."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    api_version: str = API_VERSION
    kind: str = KIND
    metadata: ObjectMeta
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus = Field(default_factory=lambda: ModelDeploymentStatus())

    @field_validator("metadata")
    @classmethod
    def _name(cls, metadata: ObjectMeta) -> ObjectMeta:
        NAME_RULE.require(
            len(metadata.name) <= MAX_NAME_LENGTH and cel_matches(NAME_PATTERN, metadata.name)
        )
        return metadata
