"""Server-side batching of concurrent predict requests (TF Serving's --enable_batching).

Requests for the same servable and signature, with the same input dtypes and
shapes past the batch dimension, wait in one queue; every request waiting
there (up to `max_batch_rows` rows) is run as one call, and each request gets
its own rows of the outputs. There is no batch timeout, as TF Serving advises
for a CPU-only server (tensorflow_serving/batching/README.md, "CPU-only: One
Approach"): a request that finds no call running runs at once, in its own
thread, so batching adds no wait at low load, and batches form only from
requests already queued behind a running call. One call for eight owners
costs about a quarter of eight calls (the catalog is read once per call, not
once per owner: 4.7 vs 17.2 ms of CPU).

At most one call per core runs at once, as TF Serving advises for its batch
threads; on 2 cores, 1 and 2 calls at once measured the same (859 and 878
queries/s at 8 clients).

Only the signatures a servable calls batchable are batched: those whose every
output row depends on its own input row alone
(models.serving.ROW_INDEPENDENT_SIGNATURES), so a request gets the same
answer alone or in a batch. Unlike TF Serving, where one bad request fails
its whole batch, a batch that fails is run again request by request, so each
request gets its own answer or its own error.
"""

import os
import threading
from collections import OrderedDict, deque
from typing import Any, Callable, Deque, Dict, Hashable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from serving.limits import DEFAULT_BATCH_THREADS

Arrays = Mapping[str, np.ndarray]
Outputs = Dict[str, np.ndarray]
RunFn = Callable[[str, Arrays], Outputs]


class _Task:
    """One request waiting for its rows of a batch's outputs (or its error), or to be told to lead."""

    __slots__ = ("arrays", "rows", "outputs", "error", "done", "lead", "wake", "finished")

    def __init__(self, arrays: Arrays, rows: int):
        self.arrays, self.rows = arrays, rows
        self.outputs: Optional[Outputs] = None
        self.error: Optional[BaseException] = None
        self.done = False
        self.lead = False  # this request's thread runs batches (see Batcher)
        self.wake = threading.Event()  # set once done, or once made to lead
        self.finished = threading.Event()  # set once done: a lead whose task another thread runs waits on this, not on `wake`

    def finish(self, run: Callable[[], Outputs]) -> None:
        try:
            self.outputs = run()
        except Exception as error:  # raised again in the request's own thread
            self.error = error
        self.done = True
        self.finished.set()
        self.wake.set()

    def result(self) -> Outputs:
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
    """Queues per (servable, signature, input layout), run as one call each by at most `threads` requests' own threads.

    There are no worker threads: a request that finds fewer than `threads`
    calls running runs the queue itself at once (no hand-off to another
    thread, so no cost at low load). A request that finds them all running
    waits; when a running call ends, its thread answers everyone in it and,
    if requests are still waiting, makes the first of them the next to run
    a batch, of everything that waits by then.
    """

    def __init__(self, max_batch_rows: int, threads: Optional[int] = DEFAULT_BATCH_THREADS):
        self.max_batch_rows = max_batch_rows
        self.threads = threads or os.cpu_count() or 1
        self._queues: "OrderedDict[Hashable, _Queue]" = OrderedDict()
        self._lock = threading.Lock()
        self._leading = 0  # threads running batches; always at least one while a task waits
        self.calls = self.requests = 0  # how many calls answered how many batched requests

    def run(self, servable: Any, signature: str, arrays: Arrays) -> Outputs:
        """`servable.run(signature, arrays)`, in a batch with other requests when `servable.batchable` has the signature."""
        rows = batch_rows(arrays)
        if signature not in servable.batchable or rows is None or rows > self.max_batch_rows:
            return servable.run(signature, arrays)
        layout = tuple(sorted((name, array.dtype.str, array.shape[1:]) for name, array in arrays.items()))
        key = (id(servable), signature, layout)  # the queue holds servable.run, so the id stays its own
        task = _Task(arrays, rows)
        with self._lock:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(servable.run, signature)
            queue.tasks.append(task)
            if self._leading < self.threads:
                self._leading += 1
                task.lead = True
        if not task.lead:
            task.wake.wait()
        if task.lead:  # from the start, or made to lead by the thread of a call that ended
            self._lead(task)
        return task.result()

    def _lead(self, own: _Task) -> None:
        """Runs batches until `own` is answered, then passes the lead to a waiting request or gives it up."""
        while True:
            with self._lock:
                if own.done:
                    # Never a request that leads already: one that took a lead of its own and has not yet
                    # started is still first in its queue, and a second lead for its thread would never be given back.
                    successor = next((task for queue in self._queues.values() for task in queue.tasks if not task.lead), None)
                    if successor is None:
                        self._leading -= 1
                    else:
                        successor.lead = True
                        successor.wake.set()
                    return
                taken = self._take()
                if taken is None:  # `own` is in a call another thread runs
                    self._leading -= 1
            if taken is None:  # `wake` may be set already, by the lead handed over: wait for the answer itself
                own.finished.wait()
                return
            execute(*taken)

    def _take(self) -> Optional[Tuple[RunFn, str, List[_Task]]]:
        """The oldest queue's waiting tasks, up to max_batch_rows; what is left waits behind the other queues. Holds the lock."""
        if not self._queues:
            return None
        key, queue = self._queues.popitem(last=False)
        batch = [queue.tasks.popleft()]
        rows = batch[0].rows
        while queue.tasks and rows + queue.tasks[0].rows <= self.max_batch_rows:
            rows += queue.tasks[0].rows
            batch.append(queue.tasks.popleft())
        if queue.tasks:
            self._queues[key] = queue
        self.calls += 1
        self.requests += len(batch)
        return queue.run, queue.signature, batch


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
