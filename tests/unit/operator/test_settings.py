"""The operator's settings from flags and environment variables."""

from __future__ import annotations

import argparse

import pytest
from modeldeploy_operator.settings import OperatorSettings, add_arguments, from_arguments


def settings_from(*argv: str) -> OperatorSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_arguments(parser.parse_args(argv))


def test_allowed_image_prefixes_come_from_repeated_flags_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings_from().allowed_image_prefixes == ()
    flags = settings_from("--allowed-image-prefix", "a.example/x/", "--allowed-image-prefix", "b/")
    assert flags.allowed_image_prefixes == ("a.example/x/", "b/")
    monkeypatch.setenv("MODELDEPLOY_ALLOWED_IMAGE_PREFIXES", "c.example/,d.example/")
    assert settings_from().allowed_image_prefixes == ("c.example/", "d.example/")


def test_an_image_is_allowed_by_a_prefix_or_as_the_operators_own() -> None:
    anything = OperatorSettings(server_image="ghcr.io/x/server:1")
    assert anything.allows_image("elsewhere.example/miner:1")
    limited = OperatorSettings(
        server_image="ghcr.io/x/server:1", allowed_image_prefixes=("registry.example/models/",)
    )
    assert limited.allows_image("registry.example/models/iris:2")
    assert limited.allows_image("ghcr.io/x/server:1")
    assert not limited.allows_image("registry.example/models-untrusted/iris:2")
    assert not limited.allows_image("elsewhere.example/miner:1")


def test_the_alertmanager_receiver_is_served_only_with_a_token_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert settings_from().alertmanager_token_file is None
    flags = settings_from("--alertmanager-token-file", "/run/token", "--alertmanager-port", "9000")
    assert (str(flags.alertmanager_token_file), flags.alertmanager_port) == ("/run/token", 9000)
    monkeypatch.setenv("MODELDEPLOY_ALERTMANAGER_TOKEN_FILE", "/etc/token")
    assert str(settings_from().alertmanager_token_file) == "/etc/token"
