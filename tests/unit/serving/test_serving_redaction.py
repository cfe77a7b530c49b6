"""redact: credentials and query strings out of any text that names URLs, the rest kept."""

from __future__ import annotations

import logging
import sys

import pytest
from modeldeploy_serving.redaction import RedactingFilter, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET https://u:p@host/a/b.joblib: HTTP 404", "GET https://***@host/a/b.joblib: HTTP 404"),
        (
            'GET https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc "HTTP/1.1 200 OK"',
            'GET https://bucket.s3.amazonaws.com/k?*** "HTTP/1.1 200 OK"',
        ),
        ("got 'http://token@h:8080/x?a=1#frag'", "got 'http://***@h:8080/x?***#frag'"),
        (
            "from http://a:b@one/x to https://two/y?sig=1",
            "from http://***@one/x to https://two/y?***",
        ),
        ("s3://models/iris/2/model.joblib", "s3://models/iris/2/model.joblib"),
        ("models:/iris/2 and models:/iris@champion", "models:/iris/2 and models:/iris@champion"),
        ("no URL here: user@example.com", "no URL here: user@example.com"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_the_filter_redacts_arguments_and_tracebacks() -> None:
    try:
        raise ValueError("cannot open https://u:secret@host/x?sig=s")
    except ValueError:
        record = logging.LogRecord(
            "httpx", logging.INFO, __file__, 1, "GET %s", ("https://u:secret@host/x?sig=s",), None
        )
        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert "GET https://***@host/x?***" in formatted
    assert "ValueError: cannot open https://***@host/x?***" in formatted
    assert "secret" not in formatted and "sig=s" not in formatted
