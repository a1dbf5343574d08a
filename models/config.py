"""Settings of the code that runs inside Transform, Trainer and the exported model.

`pipeline.config.PipelineConfig` composes these; the components receive them
as JSON custom_config (`as_custom_config`) and rebuild them here
(`from_custom_config`), so every default is written once, in this file.
"""

import dataclasses
from typing import Any, Dict, Mapping, Optional, Type, TypeVar

FOLLOWER_SCALINGS = ("log", "minmax")
# A custom_config entry only for TFX's cache key (pipeline/code_version.py); the code never reads it.
CODE_VERSION_KEY = "code_version"

_Config = TypeVar("_Config")


@dataclasses.dataclass(frozen=True)
class TransformConfig:
    """What `preprocessing_fn` reads (models/preprocessing.py)."""

    # combined_rating = star_weight * star / 5 + sentiment_weight * sentiment.
    # The notebook used 0.6 / 0.0; sentiment is real signal, so it is on by default.
    star_weight: float = 0.6
    sentiment_weight: float = 0.4
    # "log" = min-max of log1p(count): follower counts are heavy-tailed, so plain
    # min-max (the notebook's choice, "minmax") squashes almost everyone near 0.
    follower_scaling: str = "log"
    # Width of the multi-hot category vector (most frequent categories first).
    max_categories: int = 64

    def __post_init__(self) -> None:
        if self.follower_scaling not in FOLLOWER_SCALINGS:
            raise ValueError(f"follower_scaling must be one of {FOLLOWER_SCALINGS}, got {self.follower_scaling!r}")
        if self.max_categories < 1:
            raise ValueError(f"max_categories must be >= 1, got {self.max_categories}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The two-tower model and its training (models/model.py, models/trainer.py)."""

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


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """The exported SavedModel's serving limits and its ScaNN index (models/serving.py, models/index.py)."""

    # Results per `recommend` call.
    default_k: int = 10
    # Largest k a `recommend_filtered` request may ask for (bounds request cost).
    max_k: int = 500
    # The ScaNN index is tuned until its recall@k against brute force reaches
    # the target, fetching at least this many candidates so past hires can be dropped.
    scann_target_recall: float = 0.95
    scann_fetch: int = 200

    def __post_init__(self) -> None:
        if not 1 <= self.default_k <= self.max_k:
            raise ValueError(f"default_k must be in [1, max_k={self.max_k}], got {self.default_k}")
        if not 0.0 < self.scann_target_recall <= 1.0:
            raise ValueError(f"scann_target_recall must be in (0, 1], got {self.scann_target_recall}")


def as_custom_config(config: Any) -> Dict[str, Any]:
    """A config as the JSON-serializable dict a TFX component's custom_config carries."""
    return dataclasses.asdict(config)


def from_custom_config(cls: Type[_Config], custom: Optional[Mapping[str, Any]]) -> _Config:
    """The config a component was given; a key the class does not know is an error, never ignored."""
    custom = {key: value for key, value in (custom or {}).items() if key != CODE_VERSION_KEY}
    unknown = sorted(set(custom) - {field.name for field in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"{cls.__name__} has no setting {', '.join(unknown)}")
    return cls(**custom)
