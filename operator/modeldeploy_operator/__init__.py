"""modeldeploy controller: the typed API, pure builders of desired objects, the reconciler."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("modeldeploy")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
