"""The storageUri grammar: where a model's artifact may live and how each kind of URI is spelled.

Each scheme's shape is written once, as a `UriForm` pattern. The CEL rules the CRD carries, the
pydantic validator (`check_storage_uri`) and the parser the Deployment builder reads a pvc:// URI
with (`parse_pvc_uri`) are all derived from it. (`modeldeploy fetch` in the server package reads
the URIs it is handed on its own; the operator only hands it URIs this grammar admitted.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from modeldeploy_operator.api.patterns import DNS_LABEL
from modeldeploy_operator.api.rules import Rule, cel_matches, cel_string

FILE_SCHEME: Final = "file://"
PVC_SCHEME: Final = "pvc://"
HTTP_SCHEME: Final = "http://"
HTTPS_SCHEME: Final = "https://"
S3_SCHEME: Final = "s3://"
GS_SCHEME: Final = "gs://"
REGISTRY_SCHEME: Final = "models:/"  # an MLflow model registry reference
STORAGE_SCHEMES: Final = (
    FILE_SCHEME,
    PVC_SCHEME,
    HTTP_SCHEME,
    HTTPS_SCHEME,
    S3_SCHEME,
    GS_SCHEME,
    REGISTRY_SCHEME,
)


@dataclass(frozen=True)
class UriForm:
    """How the URIs of some schemes are spelled: one that starts with any of `schemes` must match
    `pattern` (anchored, read alike by RE2 and Python), else `message` is the error."""

    schemes: tuple[str, ...]
    pattern: str
    message: str

    @cached_property
    def rule(self) -> Rule:
        starts = " || ".join(f"self.startsWith({cel_string(scheme)})" for scheme in self.schemes)
        applies = f"!{starts}" if len(self.schemes) == 1 else f"!({starts})"
        return Rule(f"{applies} || self.matches({cel_string(self.pattern)})", self.message)

    def check(self, uri: str) -> None:
        """The Python twin of `rule`."""
        self.rule.require(not uri.startswith(self.schemes) or cel_matches(self.pattern, uri))


_PVC_PATH = "[^/].*"


def _pvc_uri(claim: str, path: str) -> str:
    """The pvc:// shape around a claim and a path pattern: one spelling for the rule and the
    parser, which names the parts."""
    return f"^{PVC_SCHEME}{claim}/{path}$"


FILE_URI: Final = UriForm(
    (FILE_SCHEME,),
    "^file:///[^/].*$",
    "spec.model.storageUri file:// URIs need an absolute path: file:///PATH",
)
PVC_URI: Final = UriForm(
    (PVC_SCHEME,),
    _pvc_uri(DNS_LABEL, _PVC_PATH),
    "spec.model.storageUri pvc:// URIs need a claim and a path: pvc://CLAIM/PATH",
)
BUCKET_URI: Final = UriForm(
    (S3_SCHEME, GS_SCHEME),
    "^(s3|gs)://[a-z0-9][-a-z0-9._]*/[^/].*$",
    "spec.model.storageUri s3:// and gs:// URIs need a bucket and a key: s3://BUCKET/KEY",
)
HTTP_URI: Final = UriForm(
    (HTTP_SCHEME, HTTPS_SCHEME),
    "^https?://[^/]+/.+$",
    "spec.model.storageUri http(s):// URIs need a host and a path: https://HOST/PATH",
)
REGISTRY_URI: Final = UriForm(
    (REGISTRY_SCHEME,),
    "^models:/[^/@]+(/[0-9]+|@[A-Za-z0-9_-]+)$",
    "spec.model.storageUri models:/ URIs name a registered model and a version or alias: "
    "models:/NAME/VERSION or models:/NAME@ALIAS",
)
URI_FORMS: Final = (FILE_URI, PVC_URI, BUCKET_URI, HTTP_URI, REGISTRY_URI)

_WHITESPACE = r"\s"
URI_SCHEME_RULE: Final = Rule(
    " || ".join(f"self.startsWith({cel_string(scheme)})" for scheme in STORAGE_SCHEMES),
    "spec.model.storageUri must start with one of " + ", ".join(STORAGE_SCHEMES),
)
URI_WHITESPACE_RULE: Final = Rule(
    f"!self.matches({cel_string(_WHITESPACE)})",
    "spec.model.storageUri must not contain whitespace",
)

URI_FILE_RULE: Final = FILE_URI.rule
URI_PVC_RULE: Final = PVC_URI.rule
URI_BUCKET_RULE: Final = BUCKET_URI.rule
URI_HTTP_RULE: Final = HTTP_URI.rule
URI_REGISTRY_RULE: Final = REGISTRY_URI.rule
STORAGE_URI_RULES: Final = (
    URI_SCHEME_RULE,
    URI_WHITESPACE_RULE,
    *(form.rule for form in URI_FORMS),
)


def check_storage_uri(uri: str) -> str:
    """The Python twin of `STORAGE_URI_RULES`, in their order (the first that fails is reported)."""
    URI_SCHEME_RULE.require(uri.startswith(STORAGE_SCHEMES))
    URI_WHITESPACE_RULE.require(not cel_matches(_WHITESPACE, uri))
    for form in URI_FORMS:
        form.check(uri)
    return uri


@dataclass(frozen=True)
class PvcLocation:
    """Where a pvc:// artifact lives: a PersistentVolumeClaim and a path inside it."""

    claim: str
    path: str


_PVC_PARTS = re.compile(_pvc_uri(f"(?P<claim>{DNS_LABEL})", f"(?P<path>{_PVC_PATH})"))


def parse_pvc_uri(uri: str) -> PvcLocation | None:
    """The claim and path of a pvc:// URI; None for any other scheme (those are fetched)."""
    if not uri.startswith(PVC_SCHEME):
        return None
    parts = _PVC_PARTS.fullmatch(uri)
    if parts is None:
        raise ValueError(f"{uri!r}: {PVC_URI.message}")
    return PvcLocation(claim=parts["claim"], path=parts["path"])
