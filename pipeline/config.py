"""The pipeline's one configuration object: every knob lives here."""

import dataclasses
import os
from typing import List, Optional

DEFAULT_PIPELINE_NAME = "influencer-recs"
# Output formats of batch scoring (pipeline/batch_output.py).
BATCH_SCORE_FORMATS = ("jsonl", "csv", "tfrecord", "parquet")


def default_beam_args() -> List[str]:
    """DirectRunner fanned out over this machine's cores."""
    return [
        "--direct_running_mode=multi_processing",
        f"--direct_num_workers={os.cpu_count() or 1}",
    ]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The two-tower model and its training (models/model.py)."""

    embedding_dim: int = 64
    hidden_units: int = 256
    # Off by default: on the anime data it added nothing over the hire history
    # and overfits owners with few rows.
    owner_id_embedding: bool = False
    influencer_id_embedding: bool = True
    # In-batch softmax temperature, and the logQ correction that keeps popular
    # influencers from being over-penalised as everyone's negatives.
    temperature: float = 0.05
    logq_correction: bool = True
    # Never use an owner's other past hires as its in-batch negatives.
    mask_past_hires: bool = True
    retrieval_weight: float = 1.0
    rating_weight: float = 1.0
    learning_rate: float = 5e-3
    # The schedule follows the data (models/validation.py): batches near 1/200
    # of the rows up to this cap, at most 40 epochs and 3M rows in all, and
    # early stopping on the Trainer's validation rows after `patience` epochs without gain.
    batch_size: int = 2048
    epochs: Optional[int] = None  # most epochs; None: from the data size
    patience: int = 3
    seed: int = 0
    # Sanity check: train on pairs whose influencer is shuffled across rows;
    # such a model must fail the retrieval gate.
    shuffle_pairs: bool = False


@dataclasses.dataclass
class PipelineConfig:
    """Everything a pipeline run depends on.

    `output_dir` holds the TFX artifacts (`tfx/`), the SQLite metadata store
    (`metadata.sqlite`) and, once a model is pushed, `serving/`.
    """

    data_dir: str
    output_dir: str
    pipeline_name: str = DEFAULT_PIPELINE_NAME
    # ExampleGen: share of history rows (by a hash of the row) held out for eval.
    eval_ratio: float = 0.2
    # Share of the other rows held out as the Trainer's validation split
    # (early stopping, the blend of towers and item factors).
    validation_ratio: float = 0.1
    # Drop invalid rows (and report counts) instead of failing the run.
    drop_invalid: bool = False
    # Transform: combined_rating = star_weight * star / 5 + sentiment_weight * sentiment.
    # The notebook used 0.6 / 0.0; sentiment is real signal, so it is on by default.
    star_weight: float = 0.6
    sentiment_weight: float = 0.4
    # "log" = min-max of log1p(count): follower counts are heavy-tailed, so plain
    # min-max (the notebook's choice, "minmax") squashes almost everyone near 0.
    follower_scaling: str = "log"
    # Width of the multi-hot category vector (most frequent categories first).
    max_categories: int = 64
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    # Serving: results per `recommend` call; the ScaNN index is tuned until its
    # recall@k against brute force reaches the target, fetching extra
    # candidates so past hires can be dropped.
    default_k: int = 10
    # Largest k a `recommend_filtered` request may ask for (bounds request cost).
    max_k: int = 500
    scann_target_recall: float = 0.95
    scann_fetch: int = 200
    # Gates. TFMA (rating head): RMSE at most max_rmse, and at most
    # rmse_tolerance worse than the last blessed model. Retrieval: recall@10 at
    # least min_recall_at_10 and at least min_lift_over_popular x most-popular
    # (a model trained on shuffled pairs learns popularity and lands at ~1.0x).
    max_rmse: float = 0.3
    rmse_tolerance: float = 0.02
    min_recall_at_10: float = 0.0
    min_lift_over_popular: float = 1.2
    # ...and (like TFMA's change threshold) at most this share below the last
    # blessed model's recall@10 on the same eval owners.
    max_recall_drop: float = 0.05
    max_eval_owners: int = 20000
    model_name: str = "influencer_recs"
    # After a push, score every owner of the history CSV with Beam (components/batch_scorer.py).
    batch_score: bool = False
    batch_score_k: int = 20
    beam_pipeline_args: Optional[List[str]] = None
    enable_cache: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < self.eval_ratio < 1.0:
            raise ValueError(f"eval_ratio must be in (0, 1), got {self.eval_ratio}")
        if not 0.0 < self.validation_ratio < 0.5:
            raise ValueError(f"validation_ratio must be in (0, 0.5), got {self.validation_ratio}")
        if self.follower_scaling not in ("log", "minmax"):
            raise ValueError(f"follower_scaling must be 'log' or 'minmax', got {self.follower_scaling!r}")
        if self.max_categories < 1:
            raise ValueError(f"max_categories must be >= 1, got {self.max_categories}")
        if not 1 <= self.default_k <= self.max_k:
            raise ValueError(f"default_k must be in [1, max_k={self.max_k}], got {self.default_k}")
        if not 1 <= self.batch_score_k <= self.scann_fetch:
            raise ValueError(f"batch_score_k must be in [1, scann_fetch={self.scann_fetch}], got {self.batch_score_k}")
        if self.beam_pipeline_args is None:
            self.beam_pipeline_args = default_beam_args()

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "tfx")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.output_dir, "serving")

    @property
    def model_serving_dir(self) -> str:
        """TF Serving's model base path: versions are pushed below it."""
        return os.path.join(self.serving_dir, self.model_name)

    def trainer_config(self) -> dict:
        """What `run_fn` reads from the Trainer's custom_config."""
        return {
            "model": dataclasses.asdict(self.model),
            "default_k": self.default_k,
            "max_k": self.max_k,
            "scann": {"target_recall": self.scann_target_recall, "fetch": self.scann_fetch},
        }

    def transform_config(self) -> dict:
        """The part of the config that `preprocessing_fn` reads."""
        return {
            "star_weight": self.star_weight,
            "sentiment_weight": self.sentiment_weight,
            "follower_scaling": self.follower_scaling,
            "max_categories": self.max_categories,
        }
