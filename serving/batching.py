"""Server-side batching of concurrent predict requests (TF Serving's --enable_batching).

Requests for the same servable and signature, with the same input dtypes and
shapes past the batch dimension, wait in one queue; a worker takes every
request waiting there (up to `max_batch_rows` rows), runs them as one call and
hands each request its own rows of the outputs. There is no batch timeout, as
TF Serving advises for a CPU-only server (tensorflow_serving/batching/README.md,
"CPU-only: One Approach"): a request that finds the worker free runs at once,
so batching adds no wait at low load, and batches form only from requests
already queued behind a running call. One call for eight owners costs about a
third of eight calls (the catalog is read once per call, not once per owner).

One batch thread by default, where TF Serving advises one per core: a call
already runs on every core (TensorFlow's intra-op threads), and in this server
the cores are shared with Python's HTTP and JSON work; a second thread splits
the cores between two calls and halves the batches (measured on 2 cores at
8 clients: 905 queries/s with one thread, 833 with two; BENCHMARKS.md).

Only the signatures a servable calls batchable are batched: those whose every
output row depends on its own input row alone (models.serving.ROW_INDEPENDENT_SIGNATURES),
so a request gets the same answer alone or in a batch. Unlike TF Serving, where one bad request
fails its whole batch, a batch that fails is run again request by request,
so each request gets its own answer or its own error.
"""

import threading
from collections import OrderedDict, deque
from typing import Any, Callable, Deque, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from serving.limits import DEFAULT_BATCH_THREADS

Arrays = Mapping[str, np.ndarray]
Outputs = Dict[str, np.ndarray]
RunFn = Callable[[str, Arrays], Outputs]


class _Task:
    """One request waiting for its rows of a batch's outputs (or its error)."""

    __slots__ = ("arrays", "rows", "outputs", "error", "done")

    def __init__(self, arrays: Arrays, rows: int):
        self.arrays, self.rows = arrays, rows
        self.outputs: Optional[Outputs] = None
        self.error: Optional[BaseException] = None
        self.done = threading.Event()

    def finish(self, run: Callable[[], Outputs]) -> None:
        try:
            self.outputs = run()
        except Exception as error:  # raised again in the request's own thread
            self.error = error
        self.done.set()

    def result(self) -> Outputs:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.outputs


def batch_rows(arrays: Arrays) -> Optional[int]:
    """The rows every input shares as its first dimension, or None (a request that cannot be concatenated)."""
    rows = {array.shape[0] if np.ndim(array) else None for array in arrays.values()}
    return rows.pop() if len(rows) == 1 and None not in rows else None


def split_outputs(outputs: Outputs, rows: Sequence[int]) -> List[Outputs]:
    """Each request's rows of a batched call's outputs; ValueError when an output is not one row per input row."""
    total = sum(rows)
    if any(np.ndim(value) == 0 or value.shape[0] != total for value in outputs.values()):
        raise ValueError("an output of the batched call does not have one row per input row")
    bounds = np.cumsum(rows)[:-1]
    parts: List[Outputs] = [{} for _ in rows]
    for name, value in outputs.items():
        for part, piece in zip(parts, np.split(value, bounds)):
            part[name] = piece
    return parts


class _Queue:
    """The tasks waiting for one (servable, signature, input layout), and how to run them."""

    __slots__ = ("run", "signature", "tasks")

    def __init__(self, run: RunFn, signature: str):
        self.run, self.signature = run, signature
        self.tasks: Deque[_Task] = deque()


class Batcher:
    """Queues per (servable, signature, input layout); `threads` workers run what is queued as one call."""

    def __init__(self, max_batch_rows: int, threads: int = DEFAULT_BATCH_THREADS):
        self.max_batch_rows = max_batch_rows
        self._queues: "OrderedDict[Hashable, _Queue]" = OrderedDict()
        self._ready = threading.Condition()
        self._closed = False
        self.calls = self.requests = 0  # how many calls answered how many batched requests
        self._workers = [threading.Thread(target=self._work, name=f"batch-{n}", daemon=True) for n in range(threads)]
        for worker in self._workers:
            worker.start()

    def run(self, servable: Any, signature: str, arrays: Arrays) -> Outputs:
        """`servable.run(signature, arrays)`, in a batch with other requests when `servable.batchable` has the signature."""
        rows = batch_rows(arrays)
        if signature not in servable.batchable or rows is None or rows > self.max_batch_rows:
            return servable.run(signature, arrays)
        layout = tuple(sorted((name, array.dtype.str, array.shape[1:]) for name, array in arrays.items()))
        key = (id(servable), signature, layout)  # the queue holds servable.run, so the id stays its own
        task = _Task(arrays, rows)
        with self._ready:
            if self._closed:
                return servable.run(signature, arrays)
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(servable.run, signature)
            queue.tasks.append(task)
            self._ready.notify()
        return task.result()

    def _next_batch(self) -> Optional[Tuple[_Queue, List[_Task]]]:
        """The oldest queue's waiting tasks, up to max_batch_rows (round robin across queues); None once closed."""
        with self._ready:
            while not self._queues and not self._closed:
                self._ready.wait()
            if self._closed:
                return None
            key, queue = self._queues.popitem(last=False)
            batch = [queue.tasks.popleft()]
            rows = batch[0].rows
            while queue.tasks and rows + queue.tasks[0].rows <= self.max_batch_rows:
                rows += queue.tasks[0].rows
                batch.append(queue.tasks.popleft())
            if queue.tasks:
                self._queues[key] = queue  # the rest waits behind the other queues
            self.calls += 1
            self.requests += len(batch)
            return queue, batch

    def _work(self) -> None:
        while True:
            item = self._next_batch()
            if item is None:
                return
            queue, batch = item
            execute(queue.run, queue.signature, batch)

    def close(self) -> None:
        """Stops the workers after the batches running now; what still waits, and later requests, run unbatched."""
        with self._ready:
            self._closed = True
            queues = list(self._queues.values())
            self._queues.clear()
            self._ready.notify_all()
        for queue in queues:
            for task in queue.tasks:
                task.finish(lambda queue=queue, task=task: queue.run(queue.signature, task.arrays))


def execute(run: RunFn, signature: str, batch: List[_Task]) -> None:
    """One call for the whole batch; when it fails, one call per request so each gets its own answer or error."""
    if len(batch) == 1:
        batch[0].finish(lambda: run(signature, batch[0].arrays))
        return
    try:
        combined = {name: np.concatenate([task.arrays[name] for task in batch]) for name in batch[0].arrays}
        parts = split_outputs(run(signature, combined), [task.rows for task in batch])
    except Exception:
        for task in batch:
            task.finish(lambda task=task: run(signature, task.arrays))
        return
    for task, part in zip(batch, parts):
        task.finish(lambda part=part: part)
