"""What every spec and status model shares: camelCase on the wire, and how strict each side is.

Spec models forbid unknown fields and are frozen (the reconciler must never mutate what the user
declared); status models ignore unknown fields so an older operator can read a newer status.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class SpecModel(BaseModel):
    """Base of every spec model: camelCase on the wire, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class StatusModel(BaseModel):
    """Base of status models: camelCase, unknown fields ignored (written by other versions)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


def wire_default(model: type[BaseModel]) -> dict[str, Any]:
    """A spec model's defaults as the apiserver should fill them in for an absent object.

    The CRD carries the whole defaulted object, not `{}`: the apiserver checks a default against
    the CEL rules as written, without applying the nested defaults first.
    """
    return model().model_dump(mode="json", by_alias=True, exclude_none=True)
