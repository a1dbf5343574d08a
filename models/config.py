"""Settings of the code that runs inside Transform, Trainer and the exported model.

`pipeline.config.PipelineConfig` composes these; the components receive them
as JSON custom_config (`as_custom_config`) and rebuild them here
(`from_custom_config`), so every default is written once, in this file.
"""

import dataclasses
import typing
from typing import Any, Dict, List, Mapping, Optional, Type, TypeVar, Union

FOLLOWER_SCALINGS = ("log", "minmax")
# A custom_config entry only for TFX's cache key (pipeline/code_version.py); the code never reads it.
CODE_VERSION_KEY = "code_version"

_Config = TypeVar("_Config")


def _matches(value: Any, hint: Any) -> bool:
    """Whether a plain (YAML or JSON) value is of a field's type; an int is a float, a bool is neither."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        return any(_matches(value, arg) for arg in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, List):
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Union:
        return " or ".join(_describe(arg) for arg in args)
    if origin in (list, List):
        return f"a list of {_describe(args[0]).split(' ', 1)[-1]}s"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", type(None): "null"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def check_types(cls: type, values: Mapping[str, Any]) -> None:
    """TypeError naming the first key whose value is not of its field's type (e.g. epochs: "ten", enable_cache: "false")."""
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key in hints and not _matches(value, hints[key]):
            raise TypeError(f"{key}: expected {_describe(hints[key])}, got {value!r}")


def check_range(name: str, value: Any, low: float = None, high: float = None, low_open: bool = False, high_open: bool = False) -> None:
    """ValueError naming the setting when `value` is outside [low, high] (open ends where asked); None passes."""
    if value is None:
        return
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        raise ValueError(f"{name} must be {' and '.join(bounds)}, got {value!r}")


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
        check_types(type(self), dataclasses.asdict(self))
        check_range("star_weight", self.star_weight, 0.0)
        check_range("sentiment_weight", self.sentiment_weight, 0.0)
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
    # Softmax temperature of the retrieval task (the towers end L2-normalised).
    temperature: float = 0.1
    # Share of each owner's hires held out as its targets in a training batch (drawn anew every epoch);
    # the rest are the query's input, as when the owner is served.
    target_share: float = 0.2
    # Share of training owners whose query keeps only its profile (no hires), as a new owner's
    # cold-start query does, so the towers also learn to answer from categories and budget.
    cold_start_share: float = 0.1
    retrieval_weight: float = 1.0
    rating_weight: float = 1.0
    learning_rate: float = 3e-3
    # Owners per batch at most; the schedule follows the data (models/validation.py): fewer owners
    # when their targets times the softmax width would not fit a step, epochs up to a compute budget,
    # and early stopping on the Trainer's validation rows after `patience` epochs without gain.
    batch_size: int = 256
    epochs: Optional[int] = None  # most epochs; None: from the data size
    patience: int = 5
    seed: int = 0
    # Sanity check: train on pairs whose influencer is shuffled across rows;
    # such a model must fail the retrieval gate.
    shuffle_pairs: bool = False

    def __post_init__(self) -> None:
        check_types(type(self), dataclasses.asdict(self))
        for name in ("embedding_dim", "hidden_units", "batch_size", "epochs", "patience"):
            check_range(name, getattr(self, name), 1)
        check_range("temperature", self.temperature, 0.0, low_open=True)
        check_range("learning_rate", self.learning_rate, 0.0, low_open=True)
        check_range("target_share", self.target_share, 0.0, 1.0, low_open=True, high_open=True)
        check_range("cold_start_share", self.cold_start_share, 0.0, 1.0, high_open=True)
        check_range("retrieval_weight", self.retrieval_weight, 0.0)
        check_range("rating_weight", self.rating_weight, 0.0)


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
        check_types(type(self), dataclasses.asdict(self))
        check_range("max_k", self.max_k, 1)
        check_range("scann_fetch", self.scann_fetch, 1)
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
