"""The pipeline's one configuration object: every knob lives here."""

import dataclasses
import difflib
import os
from typing import Any, Dict, List, Mapping, Optional

from components.beam_options import default_beam_args
from data.errors import UserError
from data.paths import absolute_path
from models.config import ExportConfig, ModelConfig, TransformConfig, as_custom_config, check_range, check_types

DEFAULT_PIPELINE_NAME = "influencer-recs"
METADATA_FILE = "metadata.sqlite"


def metadata_path_of(output_dir: str) -> str:
    """The SQLite ML Metadata store of a local run's output folder."""
    return os.path.join(output_dir, METADATA_FILE)


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
    # What runs inside Transform, Trainer and the exported model (models/config.py).
    transform: TransformConfig = dataclasses.field(default_factory=TransformConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    export: ExportConfig = dataclasses.field(default_factory=ExportConfig)
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
    # After a push, score every owner of the history CSV with Beam (components/batch_scorer/).
    batch_score: bool = False
    batch_score_k: int = 20
    beam_pipeline_args: Optional[List[str]] = None
    # TFX caching: a rerun on unchanged data, code and settings reuses each component's result.
    enable_cache: bool = True

    def __post_init__(self) -> None:
        check_types(type(self), {field.name: getattr(self, field.name) for field in dataclasses.fields(self)})
        check_range("eval_ratio", self.eval_ratio, 0.0, 1.0, low_open=True, high_open=True)
        check_range("validation_ratio", self.validation_ratio, 0.0, 0.5, low_open=True, high_open=True)
        check_range("max_rmse", self.max_rmse, 0.0, low_open=True)
        check_range("rmse_tolerance", self.rmse_tolerance, 0.0)
        check_range("min_recall_at_10", self.min_recall_at_10, 0.0, 1.0)
        check_range("min_lift_over_popular", self.min_lift_over_popular, 0.0)
        check_range("max_recall_drop", self.max_recall_drop, 0.0, 1.0)
        check_range("max_eval_owners", self.max_eval_owners, 1)
        if not self.model_name or "/" in self.model_name:
            raise ValueError(f"model_name must be a non-empty name without '/', got {self.model_name!r}")
        if not 1 <= self.batch_score_k <= self.export.scann_fetch:
            raise ValueError(f"batch_score_k must be in [1, scann_fetch={self.export.scann_fetch}], got {self.batch_score_k}")
        if self.beam_pipeline_args is None:
            self.beam_pipeline_args = default_beam_args()

    # The folders below are absolute whatever the user gave: TFX records artifact URIs (and the
    # Pusher its destination) as they are given, and those must not depend on the working folder.
    @property
    def pipeline_root(self) -> str:
        return os.path.join(absolute_path(self.output_dir), "tfx")

    @property
    def metadata_path(self) -> str:
        return metadata_path_of(absolute_path(self.output_dir))

    @property
    def serving_dir(self) -> str:
        return os.path.join(absolute_path(self.output_dir), "serving")

    @property
    def refresh_pipeline_name(self) -> str:
        """The catalog-refresh pipeline's name (pipeline.create_refresh_pipeline): its runs apart from the training runs'."""
        return f"{self.pipeline_name}-catalog-refresh"

    @property
    def model_serving_dir(self) -> str:
        """TF Serving's model base path: versions are pushed below it."""
        return os.path.join(self.serving_dir, self.model_name)

    def trainer_config(self) -> Dict[str, Any]:
        """What `run_fn` reads from the Trainer's custom_config."""
        return {"model": as_custom_config(self.model), "export": as_custom_config(self.export)}

    def transform_config(self) -> Dict[str, Any]:
        """What `preprocessing_fn` reads from Transform's custom_config."""
        return as_custom_config(self.transform)


class ConfigError(UserError):
    """A configuration file or mapping with a key or value the config does not take."""


_SECTIONS = {"transform": TransformConfig, "model": ModelConfig, "export": ExportConfig}


def config_fields(cls: type = None) -> Dict[str, dataclasses.Field]:
    """The settable fields of PipelineConfig (or a section of it), by name."""
    return {field.name: field for field in dataclasses.fields(cls or PipelineConfig)}


def config_from_mapping(values: Mapping[str, Any], where: str = "config") -> PipelineConfig:
    """A PipelineConfig from plain data (a parsed YAML file): top-level knobs plus transform/model/export sections.

    Every key must be a field; an unknown key is an error that names it and lists the known ones.
    """
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(values).__name__}")
    top = config_fields()
    unknown = sorted(set(values) - set(top))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}{_did_you_mean(unknown[0], top)} (known: {', '.join(sorted(top))})")
    settings = dict(values)
    for name, cls in _SECTIONS.items():
        if name not in settings:
            continue
        section = settings[name]
        if not isinstance(section, Mapping):
            raise ConfigError(f"{where}: {name} must be a mapping of {cls.__name__} settings")
        known = config_fields(cls)
        bad = sorted(set(section) - set(known))
        if bad:
            raise ConfigError(f"{where}: unknown key {name}.{bad[0]!r}{_did_you_mean(bad[0], known)} (known: {', '.join(sorted(known))})")
        settings[name] = _build(cls, section, f"{where}: {name}")
    missing = [name for name in ("data_dir", "output_dir") if name not in settings]
    if missing:
        raise ConfigError(f"{where}: {' and '.join(missing)} must be given (in the file or as --data / --output)")
    return _build(PipelineConfig, settings, where)


def _did_you_mean(key: str, known) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _build(cls: type, settings: Mapping[str, Any], where: str):
    """The config, every value's type and range checked (the message names the key, the value and what was expected)."""
    try:
        return cls(**settings)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}.{error}" if where.endswith(("transform", "model", "export")) else f"{where}: {error}") from None


def load_config_file(path: str) -> Dict[str, Any]:
    """The settings of a YAML config file, as plain data (config_from_mapping builds the config)."""
    import yaml

    try:
        with open(path) as handle:
            values = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return values or {}
