"""One shard of batch scoring, end to end: its owners -> query embeddings -> top-K -> its own output files.

Every owner of a shard arrives in one element (after ReadInputs' GroupByKey),
so the step needs neither a bundle-level batcher nor a file sink: it scores in
batches of MAX_BATCH, writes the shard's files itself (output.write_shard) and
yields the shard's counts, which the driver checks against what was read.
That keeps the job one chain of Create, ParDo and GroupByKey, which every Beam
runner, Dask's included, runs whole.
"""

import logging
from typing import Dict, List, Optional, Tuple

import apache_beam as beam
import numpy as np

from components.batch_scorer import output, progress
from components.batch_scorer.inference import check_explains, explain_rows, load_model, query_embeddings
from components.batch_scorer.owners import shard_input
from components.batch_scorer.records import INFERENCE_FAILED, RETRIEVAL_FAILED, UNKNOWN_OWNER, OwnerRow, dead_letter, scored_row
from components.batch_scorer.retrieval import shared_retriever

MAX_BATCH = 1024  # owners per model call and per index search
# A shard's counts, each summed over the shards by the driver (output.read_counts).
COUNTERS = ("owners_read", "owners_scored", "unknown_owners", "invalid_owner_ids", "failures", "exact_fallbacks")


class ScoreShard(beam.DoFn):
    """(shard, ReadInputs' items) -> the shard's files under `directory`; yields its counts."""

    def __init__(self, version_dir: str, directory: str, shards: int, k: int, brute_force: bool, output_format: str,
                 explain: bool, progress_dir: Optional[str] = None):
        self._version_dir, self._directory, self._shards = version_dir, directory, shards
        self._k, self._brute_force, self._format, self._explain = k, brute_force, output_format, explain
        self._progress_dir = progress_dir

    def setup(self):
        self._model = load_model(self._version_dir)
        if self._explain:
            check_explains(self._model, self._version_dir)
        self._retriever = shared_retriever(self._version_dir, self._brute_force)

    def process(self, element):
        shard, items = element
        given = shard_input(items)
        counts = dict.fromkeys(COUNTERS, 0)
        counts.update(owners_read=given.claimed, invalid_owner_ids=len(given.invalid))
        scored, dead = [], list(given.invalid)
        done = progress.CountFile(self._progress_dir, progress.DONE)
        done.add(len(given.invalid))
        for start in range(0, len(given.owners), MAX_BATCH):
            batch = given.owners[start : start + MAX_BATCH]
            rows, letters = self._score(batch, counts)
            scored += rows
            dead += letters
            done.add(len(batch))
        done.flush()
        counts["owners_scored"] = len(scored)
        output.write_shard(self._directory, shard, self._shards, scored, dead, self._format, self._explain, {**counts, "dead_lettered": len(dead)})
        yield shard, counts

    def _score(self, batch: List[OwnerRow], counts: Dict[str, int]) -> Tuple[List[Dict], List[Dict]]:
        """Scored rows and dead letters of one batch; a failing model call or search dead-letters its batch, not the job."""
        try:
            embeddings, history = query_embeddings(self._model, [row.owner_id for row in batch])
        except Exception as error:
            logging.exception("query embeddings failed for a batch of %d owners", len(batch))
            counts["failures"] += len(batch)
            return [], [_letter(row, f"{INFERENCE_FAILED}: {error}") for row in batch]
        known = [n for n in range(len(batch)) if history[n] > 0]
        letters = [_letter(batch[n], f"{UNKNOWN_OWNER}: the model has no train history for it") for n in range(len(batch)) if history[n] == 0]
        counts["unknown_owners"] += len(letters)
        if not known:
            return [], letters
        rows = [batch[n] for n in known]
        try:
            ids, scores, fallbacks = self._retriever.retriever.top_k(np.asarray(embeddings[known], np.float32), [row.exclude for row in rows], self._k)
        except Exception as error:
            logging.exception("retrieval failed for a batch of %d owners", len(rows))
            counts["failures"] += len(rows)
            return [], letters + [_letter(row, f"{RETRIEVAL_FAILED}: {error}") for row in rows]
        counts["exact_fallbacks"] += fallbacks
        scored = [scored_row(row.owner_id, row_ids, row_scores) for row, row_ids, row_scores in zip(rows, ids, scores)]
        return (explain_rows(self._model, scored) if self._explain else scored), letters


def _letter(row: OwnerRow, reason: str) -> Dict:
    return dead_letter(str(row.owner_id), row.file, row.line, reason)
