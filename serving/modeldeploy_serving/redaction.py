"""What never reaches a log line or an error message: the secrets a URL can carry.

A storage URI may hold credentials in its userinfo (`https://user:password@host/...`) and a
presigned URL its signature in the query string. Both are replaced by `***` wherever a URL
appears in a text — ours, httpx's request lines, exceptions — so the rest stays useful:
`https://***@host/path?***`.
"""

from __future__ import annotations

import logging
import re

_URL = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)"
    r"(?P<userinfo>[^/?#@\s'\"]*@)?"
    r"(?P<rest>[^?#\s'\"]*)"
    r"(?P<query>\?[^#\s'\"]*)?"
)


def _redact_match(match: re.Match[str]) -> str:
    return (
        match["scheme"]
        + ("***@" if match["userinfo"] else "")
        + match["rest"]
        + ("?***" if match["query"] else "")
    )


def redact(text: str) -> str:
    """`text` with the userinfo and the query string of every URL in it replaced by `***`."""
    return _URL.sub(_redact_match, text)


class RedactingFilter(logging.Filter):
    """Put on a handler: every record it emits, whoever logged it, is redacted first."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True
