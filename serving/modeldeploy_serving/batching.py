"""Micro-batching (opt-in, `--micro-batch-rows N`): the rows of requests that arrive together are
predicted in one estimator call, then split back per request.

scikit-learn's per-call overhead (input checks, for a forest one dispatch per tree) dwarfs the
arithmetic of a small model, so one call for 16 requests costs about what one request costs.
No timer is involved: the requests whose handlers run in the same event-loop turn form a batch,
so an idle server answers as fast as without batching and a busy one batches by itself.

The catch, and why it is off by default: for models whose arithmetic goes through BLAS (linear
models, an MLP) the result of a row can differ in its last bits with the size of the batch it is
computed in, so a request's floating-point outputs then depend on concurrent traffic. Tree
ensembles and label outputs are not affected in practice; measure before turning it on.
"""

from __future__ import annotations

import asyncio

import numpy as np

from modeldeploy_serving.model import Method, ServedModel

_Item = tuple[np.ndarray, "asyncio.Future[np.ndarray]"]


class MicroBatcher:
    def __init__(self, model: ServedModel, max_rows: int) -> None:
        self.model = model
        self.max_rows = max_rows
        self._pending: dict[tuple[Method, str], list[_Item]] = {}
        self._scheduled = False
        self.calls = 0  # estimator calls made, for tests and curiosity

    async def run(self, method: Method, rows: np.ndarray) -> np.ndarray:
        if rows.shape[0] >= self.max_rows:
            self.calls += 1
            return self.model.run(method, rows)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[np.ndarray] = loop.create_future()
        # Same method and dtype only: concatenating FP32 with FP64 rows would change what the
        # model sees.
        self._pending.setdefault((method, rows.dtype.str), []).append((rows, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        for (method, _), items in pending.items():
            group: list[_Item] = []
            size = 0
            for item in items:
                if group and size + item[0].shape[0] > self.max_rows:
                    self._run_group(method, group)
                    group, size = [], 0
                group.append(item)
                size += item[0].shape[0]
            if group:
                self._run_group(method, group)

    def _run_group(self, method: Method, group: list[_Item]) -> None:
        live = [(rows, future) for rows, future in group if not future.done()]
        if not live:
            return
        if len(live) > 1:
            try:
                self.calls += 1
                result = self.model.run(method, np.concatenate([rows for rows, _ in live]))
            except Exception:
                pass  # one request's rows may be the cause: answer each on its own below
            else:
                bounds = np.cumsum([rows.shape[0] for rows, _ in live])[:-1]
                for (_, future), part in zip(live, np.split(result, bounds), strict=True):
                    future.set_result(part)
                return
        for rows, future in live:
            try:
                self.calls += 1
                future.set_result(self.model.run(method, rows))
            except Exception as e:
                future.set_exception(e)
