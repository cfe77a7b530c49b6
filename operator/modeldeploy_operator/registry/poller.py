"""When each followed registry is asked, and what it last answered: `RegistryPoller`.

One timer per ModelDeployment, kept by the work queue: every pass gets the latest answer and the
seconds until the next poll is due (the reconciler requeues the key for then). The registry is
asked again only once `pollInterval` has passed, or at once when spec.model.source changed. In
memory: a restarted operator asks at once, and status.resolved keeps the pin meanwhile. The
source's credentials Secret is read on each poll, so a rotated password is used from the next.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from modeldeploy_operator.api import MlflowSource, ModelDeployment, ResolvedVersion, parse_duration
from modeldeploy_operator.registry.credentials import (
    CredentialsUnavailable,
    SecretReader,
    read_credentials,
)
from modeldeploy_operator.registry.follow import Answer, Problem, Resolved
from modeldeploy_operator.registry.mlflow import (
    AccessDenied,
    ArtifactUnusable,
    MlflowClient,
    ModelFile,
    ReferenceNotFound,
    RegistryUnreachable,
)
from modeldeploy_operator.view import Key

log = logging.getLogger("modeldeploy.registry")


@dataclass(frozen=True)
class RegistryPoll:
    """A registry's answer, when it was asked (monotonic seconds) and about what source."""

    at: float
    source: MlflowSource
    answer: Answer


class RegistryPoller:
    """The latest answer of each followed registry, asked over the reconciler's HTTP session
    with the credentials `secrets` reads."""

    def __init__(self, session: Callable[[], aiohttp.ClientSession], secrets: SecretReader) -> None:
        self._session = session
        self._secrets = secrets
        self._polls: dict[Key, RegistryPoll] = {}

    async def answer(self, key: Key, md: ModelDeployment) -> tuple[Answer, float]:
        """The registry's latest answer, asked now if a poll is due; the seconds to the next."""
        source = md.spec.model.source
        assert source is not None, "only a ModelDeployment that follows a source is polled"
        interval = parse_duration(source.mlflow.poll_interval)
        held = self._polls.get(key)
        now = time.monotonic()
        if held is not None and held.source == source.mlflow and now - held.at < interval:
            return held.answer, interval - (now - held.at)
        answer = await self._ask(md.metadata.namespace, source.mlflow, md.status.resolved)
        if isinstance(answer, Problem):
            log.warning("%s/%s: %s: %s", *key, answer.kind, answer.message)
        self._polls[key] = RegistryPoll(now, source.mlflow, answer)
        return answer, interval

    def forget(self, key: Key) -> None:
        self._polls.pop(key, None)

    async def _ask(
        self, namespace: str, source: MlflowSource, pinned: ResolvedVersion | None
    ) -> Answer:
        """What the source resolves to now. The model file of a version already pinned is not
        downloaded again: a registered version's files do not change."""
        try:
            credentials = await read_credentials(
                self._secrets, namespace, source.credentials_secret_ref
            )
            client = MlflowClient(self._session(), source, credentials)
            registered = await client.lookup()
            if (
                pinned is not None
                and pinned.version == registered.version
                and pinned.artifact_uri == registered.artifact_uri
            ):
                model_file = ModelFile(pinned.model_file_uri, pinned.sha256)
            else:
                model_file = await client.model_file(registered)
        except RegistryUnreachable as err:
            return Problem("RegistryUnreachable", str(err))
        except ReferenceNotFound as err:
            return Problem("ReferenceNotFound", str(err))
        except ArtifactUnusable as err:
            return Problem("ArtifactUnusable", str(err))
        except CredentialsUnavailable as err:
            return Problem("CredentialsUnavailable", str(err))
        except AccessDenied as err:
            return Problem("AccessDenied", _denied(source, str(err)))
        return Resolved(registered, model_file)


def _denied(source: MlflowSource, detail: str) -> str:
    """What to check when the registry refuses: the Secret, or that there is none."""
    ref = source.credentials_secret_ref
    if ref is None:
        return f"{detail}: the tracking server wants credentials (set credentialsSecretRef)"
    return f"{detail}: the tracking server refused the credentials in Secret {ref.name}"
