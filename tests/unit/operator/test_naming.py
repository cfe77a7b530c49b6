"""Child names and labels: DNS-safe, deterministic, collision-resistant, within 63 characters."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from modeldeploy_operator import api, naming

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SLUG = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

versions = st.from_regex(api.VERSION_PATTERN, fullmatch=True)
md_names = st.from_regex(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", fullmatch=True)


class TestVersionSlug:
    @pytest.mark.parametrize("version", ["1", "42", "v2", "2024-01-31", "a-b-c"])
    def test_already_safe_versions_pass_through(self, version: str) -> None:
        assert naming.version_slug(version) == version

    @pytest.mark.parametrize("version", ["1.0", "1_0", "V1", "2.0.1-RC1"])
    def test_changed_text_gets_a_hash_suffix(self, version: str) -> None:
        slug = naming.version_slug(version)
        folded = re.sub(r"[^a-z0-9-]+", "-", version.lower())
        assert re.fullmatch(rf"{re.escape(folded)}-[0-9a-f]{{6}}", slug)

    def test_lookalikes_do_not_collide(self) -> None:
        slugs = {naming.version_slug(v) for v in ("1-0", "1.0", "1_0", "1..0", "1._0")}
        assert len(slugs) == 5

    def test_case_variants_do_not_collide(self) -> None:
        assert naming.version_slug("v1") != naming.version_slug("V1")

    def test_empty_is_refused(self) -> None:
        with pytest.raises(ValueError, match="empty"):
            naming.version_slug("")

    @given(versions)
    def test_slug_is_dns_safe_and_deterministic(self, version: str) -> None:
        slug = naming.version_slug(version)
        assert SLUG.fullmatch(slug), slug
        assert slug == naming.version_slug(version)

    @given(versions, versions)
    def test_distinct_versions_get_distinct_slugs(self, one: str, other: str) -> None:
        if one != other:
            assert naming.version_slug(one) != naming.version_slug(other)


class TestTrackName:
    def test_convention(self) -> None:
        assert naming.track_name("iris", "2") == "iris-v2"
        assert naming.track_name("iris", "1.0").startswith("iris-v1-0-")

    def test_long_names_are_cut_with_a_hash(self) -> None:
        name = naming.track_name("m" * 63, "1")
        assert len(name) == 63 and DNS_1035.fullmatch(name)
        assert name != naming.track_name("m" * 63, "2")
        assert name != naming.track_name("m" * 62, "1")

    @given(md_names, versions)
    def test_always_a_dns_1035_label(self, md: str, version: str) -> None:
        name = naming.track_name(md, version)
        assert len(name) <= naming.DNS_LABEL_MAX
        assert DNS_1035.fullmatch(name), name
        assert name == naming.track_name(md, version)

    @given(md_names, versions, versions)
    def test_versions_of_one_model_never_share_a_name(self, md: str, one: str, other: str) -> None:
        if one != other:
            assert naming.track_name(md, one) != naming.track_name(md, other)

    def test_model_service_is_the_model_name(self) -> None:
        assert naming.model_service_name("iris") == "iris"


class TestLabels:
    def test_labels_for_a_version(self) -> None:
        assert naming.labels_for("iris", "1.0", "canary") == {
            "app.kubernetes.io/name": "iris",
            "app.kubernetes.io/managed-by": "modeldeploy",
            "app.kubernetes.io/part-of": "modeldeploy",
            "modeldeploy.dev/model": "iris",
            "modeldeploy.dev/version": "1.0",
            "modeldeploy.dev/track": "canary",
        }

    def test_pod_labels_leave_out_the_track(self) -> None:
        pod = naming.pod_labels("iris", "2")
        assert naming.LABEL_TRACK not in pod
        assert pod == {
            k: v
            for k, v in naming.labels_for("iris", "2", "stable").items()
            if k != naming.LABEL_TRACK
        }

    def test_model_labels_have_no_version(self) -> None:
        labels = naming.model_labels("iris")
        assert naming.LABEL_VERSION not in labels and naming.LABEL_TRACK not in labels
        assert labels[naming.LABEL_MODEL] == "iris"

    def test_selectors(self) -> None:
        assert naming.version_selector("iris", "2") == {
            "modeldeploy.dev/model": "iris",
            "modeldeploy.dev/version": "2",
        }
        assert naming.model_selector("iris") == {"modeldeploy.dev/model": "iris"}
        selector = naming.version_selector("iris", "2")
        assert selector.items() <= naming.pod_labels("iris", "2").items()

    def test_selector_string(self) -> None:
        assert (
            naming.selector_string(naming.version_selector("iris", "2"))
            == "modeldeploy.dev/model=iris,modeldeploy.dev/version=2"
        )
