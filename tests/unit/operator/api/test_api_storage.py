"""api.storage: one grammar per scheme gives the CEL rule, the validator and the pvc:// parser."""

from __future__ import annotations

import pytest
from modeldeploy_operator.api import storage
from modeldeploy_operator.api.storage import PvcLocation, check_storage_uri, parse_pvc_uri


class TestParsePvcUri:
    @pytest.mark.parametrize(
        ("uri", "claim", "path"),
        [
            ("pvc://models/iris/2/model.joblib", "models", "iris/2/model.joblib"),
            ("pvc://models/iris/2/", "models", "iris/2/"),
            ("pvc://m-1/a", "m-1", "a"),
            ("pvc://shared/a//b", "shared", "a//b"),
        ],
    )
    def test_claim_and_path(self, uri: str, claim: str, path: str) -> None:
        assert parse_pvc_uri(uri) == PvcLocation(claim=claim, path=path)

    @pytest.mark.parametrize(
        "uri",
        [
            "file:///models/iris.joblib",
            "http://files.example/iris.joblib",
            "https://files.example/iris.joblib",
            "s3://bucket/iris.joblib",
            "gs://bucket/iris.joblib",
            "models:/iris/3",
        ],
    )
    def test_other_schemes_are_not_mounted(self, uri: str) -> None:
        assert parse_pvc_uri(uri) is None

    @pytest.mark.parametrize(
        "uri",
        ["pvc://models", "pvc://models/", "pvc://Models/iris", "pvc://-x/iris", "pvc:///iris"],
    )
    def test_refuses_what_the_rule_refuses(self, uri: str) -> None:
        with pytest.raises(ValueError, match="pvc://CLAIM/PATH"):
            parse_pvc_uri(uri)
        with pytest.raises(ValueError) as refused:
            check_storage_uri(uri)
        assert str(refused.value) == storage.URI_PVC_RULE.message

    def test_a_trailing_newline_is_not_part_of_a_path(self) -> None:
        """Python's `$` matches before a final newline, RE2's does not: the parser must not."""
        with pytest.raises(ValueError):
            parse_pvc_uri("pvc://models/iris\n")


class TestRules:
    def test_cel_is_spelled_from_the_forms(self) -> None:
        assert storage.URI_PVC_RULE.cel == (
            "!self.startsWith('pvc://')"
            " || self.matches('^pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?/[^/].*$')"
        )
        assert storage.URI_HTTP_RULE.cel == (
            "!(self.startsWith('http://') || self.startsWith('https://'))"
            " || self.matches('^https?://[^/]+/.+$')"
        )
        assert storage.URI_WHITESPACE_RULE.cel == "!self.matches('\\\\s')"

    def test_every_rule_is_checked_in_order(self) -> None:
        assert storage.STORAGE_URI_RULES[:2] == (
            storage.URI_SCHEME_RULE,
            storage.URI_WHITESPACE_RULE,
        )
        assert storage.STORAGE_URI_RULES[2:] == tuple(form.rule for form in storage.URI_FORMS)
        # A URI breaking two rules gets the first one's message, as from the apiserver's list.
        with pytest.raises(ValueError) as refused:
            check_storage_uri("ftp://host with space/x")
        assert str(refused.value) == storage.URI_SCHEME_RULE.message

    @pytest.mark.parametrize(
        ("uri", "form"),
        [
            ("file://relative/model.joblib", storage.FILE_URI),
            ("s3://bucket", storage.BUCKET_URI),
            ("gs://Bucket/key", storage.BUCKET_URI),
            ("https://host", storage.HTTP_URI),
            ("models:/iris/latest", storage.REGISTRY_URI),
        ],
    )
    def test_each_form_refuses_with_its_message(self, uri: str, form: storage.UriForm) -> None:
        with pytest.raises(ValueError) as refused:
            check_storage_uri(uri)
        assert str(refused.value) == form.message

    def test_accepted_uris_come_back_unchanged(self) -> None:
        uri = "https://files.example:8443/a/b/model.joblib?sig=abc"
        assert check_storage_uri(uri) == uri
