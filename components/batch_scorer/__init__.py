"""Batch scoring: the BatchScorer component, its executor, and the Beam job both it and `batch-score` run."""
