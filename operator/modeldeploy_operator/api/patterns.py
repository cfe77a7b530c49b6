"""Patterns of names and identifiers the API accepts (units are in `units`, storage URIs in
`storage`). Each is a regular expression RE2 (the apiserver) and Python's `re` read alike."""

from __future__ import annotations

from typing import Final

# An RFC 1123 label, unanchored: the building block of DNS names, claims and hostnames.
DNS_LABEL: Final = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_LABEL_PATTERN: Final = f"^{DNS_LABEL}$"
DNS_SUBDOMAIN_PATTERN: Final = rf"^{DNS_LABEL}(\.{DNS_LABEL})*$"
# Gateway API Hostname: an RFC 1123 name, optionally with one leading wildcard label.
HOSTNAME_PATTERN: Final = rf"^(\*\.)?{DNS_LABEL}(\.{DNS_LABEL})*$"
# The model's Service is named after the ModelDeployment, and Service names are DNS-1035 labels.
NAME_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

# A label value (the version is the `modeldeploy.dev/version` label on every pod).
VERSION_PATTERN: Final = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"
SHA256_PATTERN: Final = r"^[a-f0-9]{64}$"
ENV_NAME_PATTERN: Final = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# A key of a Secret's or ConfigMap's data.
DATA_KEY_PATTERN: Final = r"^[-._a-zA-Z0-9]+$"
HTTP_URL_PATTERN: Final = r"^https?://[^\s/]+(/\S*)?$"
