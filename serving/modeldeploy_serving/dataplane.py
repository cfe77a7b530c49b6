"""The protocol-neutral core of the server: one model, its lifecycle, and inference on rows.

Every protocol's endpoints (rest/v1.py, rest/v2.py) come here with a body and their own parser
and writer (`serve`); nothing here knows about HTTP or the wire formats. What lives here: which
model and version this server serves, loading it in a thread (so liveness answers while a large
model unpickles), readiness, the input checks, where a request is worked on (a large body wholly
in a thread, a big batch predicted in one, small ones through the micro-batcher when it is on,
else inline) and what a batch adds to the metrics (predictions and drift).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

import numpy as np

from modeldeploy_serving.batching import MicroBatcher
from modeldeploy_serving.drift import Reference, load_reference
from modeldeploy_serving.errors import NotFound, NotReady, ReferenceDataError
from modeldeploy_serving.metrics import BatchCounts, ServingMetrics
from modeldeploy_serving.model import Method, ServedModel
from modeldeploy_serving.settings import ServerSettings

log = logging.getLogger(__name__)

Results = list[tuple[Method, np.ndarray]]


class Decoded(Protocol):
    """A parsed inference request, whatever its protocol: the rows and the outputs asked for."""

    @property
    def rows(self) -> np.ndarray: ...

    @property
    def outputs(self) -> tuple[Method, ...]: ...


DecodedT = TypeVar("DecodedT", bound=Decoded)


def _predicted(results: Results) -> np.ndarray | None:
    """The `predict` output among `results`, which the metrics count; None when not asked."""
    return next((values for method, values in results if method == "predict"), None)


class DataPlane:
    def __init__(
        self,
        settings: ServerSettings,
        metrics: ServingMetrics,
        model: ServedModel | None = None,
        reference: Reference | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.model: ServedModel | None = None
        self.batcher: MicroBatcher | None = None
        # Called when the model cannot be loaded: the process should stop (server.py).
        self.on_fatal: Callable[[BaseException], None] | None = None
        if model is not None:
            self._choose_path(model, reference)
            self.set_model(model, reference)

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def version(self) -> str:
        return self.settings.version

    # -- the model's lifecycle -------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.model is not None

    def set_model(self, model: ServedModel, reference: Reference | None) -> None:
        expected = model.signature.n_features
        if reference is not None and expected is not None and len(reference.features) != expected:
            # The reference is optional: a wrong one costs the drift metrics, not the model.
            log.warning(
                "reference.json describes %d features, the model takes %d: serving without "
                "drift metrics (rebuild it with `modeldeploy reference`)",
                len(reference.features),
                expected,
            )
            reference = None
        self.metrics.model_ready(model.signature, reference, model.sha256, model.path)
        if self.settings.micro_batch_rows > 1:
            self.batcher = MicroBatcher(model, self.settings.micro_batch_rows)
        self.model = model
        log.info(
            "model %s version %s ready: %s (served by %s) from %s (sha256 %s)%s",
            self.settings.name,
            self.settings.version,
            model.signature.estimator_type,
            "its fast path" if model.path == "fast" else "scikit-learn",
            model.artifact,
            model.sha256,
            ", drift reference loaded" if reference is not None else ", no drift reference",
        )

    def _load(self) -> tuple[ServedModel, Reference | None]:
        s = self.settings
        model = ServedModel.load(s.model_dir, s.sha256, s.skops_trusted)
        try:
            reference = load_reference(s.model_dir)
        except ReferenceDataError as e:
            log.warning("%s: serving without drift metrics", e)
            reference = None
        # Here, in the loading thread: the check calls scikit-learn a few dozen times.
        self._choose_path(model, reference)
        return model, reference

    def _choose_path(self, model: ServedModel, reference: Reference | None) -> None:
        """The fast path serves when it is on and matches scikit-learn (ServedModel)."""
        if self.settings.fast_path:
            model.use_fast_path(reference.edges if reference is not None else None)

    def start_loading(self) -> None:
        """Load in a thread so that liveness answers while a large model unpickles."""
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, self._load)
        future.add_done_callback(self._loaded)

    def _loaded(self, future: asyncio.Future[tuple[ServedModel, Reference | None]]) -> None:
        try:
            self.set_model(*future.result())
        except Exception as e:
            log.error("cannot serve the model: %s", e)
            if self.on_fatal is not None:
                self.on_fatal(e)

    # -- requests --------------------------------------------------------------------------

    def check_addressed(self, model: str | None, version: str | None) -> None:
        """`NotFound` when a request names a model or a version this server does not serve."""
        if model is not None and model != self.settings.name:
            raise NotFound(
                f"model {model!r} is not served here; this server serves {self.settings.name!r}"
            )
        if version is not None and version != self.settings.version:
            raise NotFound(
                f"version {version!r} of {self.settings.name!r} is not served here; "
                f"this server serves version {self.settings.version!r}"
            )

    def require_model(self) -> ServedModel:
        """The loaded model; `NotReady` (503) while it loads."""
        model = self.model
        if model is None:
            raise NotReady(f"model {self.settings.name!r} is still loading; retry shortly")
        return model

    async def serve(
        self,
        model: ServedModel,
        body: bytes,
        decode: Callable[[bytes], DecodedT],
        encode: Callable[[DecodedT, Results], bytes],
    ) -> bytes:
        """The answer to `body`: decoded with the protocol's parser, inferred, encoded with its
        writer. On the event loop for small bodies (nearly all traffic: no thread hop); from
        --offload-bytes on, all of it in a thread, so that a 10 MB body never holds up the
        probes and the other requests."""
        if len(body) < self.settings.offload_bytes:
            request = decode(body)
            return encode(request, await self.infer(model, request.rows, request.outputs))
        loop = asyncio.get_running_loop()
        encoded, counts = await loop.run_in_executor(
            None, self._serve_in_thread, model, body, decode, encode
        )
        self.metrics.add_batch(counts)  # counters change on the event loop only
        return encoded

    def _serve_in_thread(
        self,
        model: ServedModel,
        body: bytes,
        decode: Callable[[bytes], DecodedT],
        encode: Callable[[DecodedT, Results], bytes],
    ) -> tuple[bytes, BatchCounts]:
        request = decode(body)
        model.check_rows(request.rows)
        results = [(method, model.run(method, request.rows)) for method in request.outputs]
        allow_nan = model.signature.allow_nan
        counts = self.metrics.count_batch(request.rows, _predicted(results), allow_nan)
        return encode(request, results), counts

    async def infer(
        self, model: ServedModel, rows: np.ndarray, methods: tuple[Method, ...]
    ) -> Results:
        """Each of `methods` on `rows` (checked first), in order; the batch is recorded."""
        model.check_rows(rows)
        # Inline, nearly all traffic: called directly, with no coroutine to create and await.
        inline = self.batcher is None and rows.shape[0] < self.settings.offload_rows
        results: Results = []
        for method in methods:
            values = model.run(method, rows) if inline else await self._run(model, method, rows)
            results.append((method, values))
        self.metrics.record_batch(rows, _predicted(results), model.signature.allow_nan)
        return results

    async def _run(self, model: ServedModel, method: Method, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] >= self.settings.offload_rows:
            # A big batch would stall every other request and the probes: predict in a thread.
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, model.run, method, rows)
        if self.batcher is not None:
            return await self.batcher.run(method, rows)
        return model.run(method, rows)
