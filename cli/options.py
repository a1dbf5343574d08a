"""The options of `run` (and the commands that build a pipeline config): one table, mapped onto PipelineConfig.

Precedence: the config classes' defaults, then `--config FILE` (YAML), then
the flags given on the command line. A flag's default shown in `--help` is
read from the config class, never retyped.
"""

import argparse
import copy
import dataclasses
import shlex
from typing import Any, Dict, List, NamedTuple, Optional, Sequence

from models.config import FOLLOWER_SCALINGS
from pipeline.config import ConfigError, PipelineConfig, config_fields, config_from_mapping, load_config_file


class Option(NamedTuple):
    flag: str
    path: str  # "eval_ratio" or "section.field" in PipelineConfig
    type: Any
    help: str
    choices: Optional[Sequence[str]] = None


OPTIONS = (
    Option("--eval-ratio", "eval_ratio", float, "share of history rows held out for eval, by a hash of the row"),
    Option("--validation-ratio", "validation_ratio", float, "share of the other rows held out for early stopping and the blend"),
    Option("--star-weight", "transform.star_weight", float, "label weight of star_rating / 5"),
    Option("--sentiment-weight", "transform.sentiment_weight", float, "label weight of sentiment_rating"),
    Option("--follower-scaling", "transform.follower_scaling", str, "log: min-max of log1p(count); minmax: the notebook's", FOLLOWER_SCALINGS),
    Option("--max-categories", "transform.max_categories", int, "width of the multi-hot category vector"),
    Option("--epochs", "model.epochs", int, "most training epochs of the towers (None: from the data size; early stopping usually ends sooner)"),
    Option("--seed", "model.seed", int, "training seed"),
    Option("--max-rmse", "max_rmse", float, "gate: largest RMSE of the rating head (TFMA)"),
    Option("--rmse-tolerance", "rmse_tolerance", float, "gate: most RMSE increase over the last blessed model"),
    Option("--min-recall-at-10", "min_recall_at_10", float, "gate: smallest recall@10 on the eval owners"),
    Option("--min-lift-over-popular", "min_lift_over_popular", float, "gate: smallest recall@10 ratio over most-popular"),
    Option("--max-recall-drop", "max_recall_drop", float, "gate: largest share of recall@10 below the last blessed model"),
    Option("--batch-score-k", "batch_score_k", int, "results per owner of the BatchScorer"),
)
SWITCHES = (
    ("--drop-invalid", "drop_invalid", True, "drop invalid rows (and report counts) instead of stopping"),
    ("--batch-score", "batch_score", True, "after a push, batch-score every owner of the history (BatchScorer)"),
    ("--no-cache", "enable_cache", False, "recompute every component (default: reuse results whose inputs, code and settings are unchanged)"),
)


def _dest(path: str) -> str:
    return "opt_" + path.replace(".", "__")


def default_of(path: str) -> Any:
    """The config class's own default for a PipelineConfig path."""
    owner: Any = PipelineConfig
    fields = config_fields()
    *sections, name = path.split(".")
    for section in sections:
        field = fields[section]
        owner = field.default_factory  # type: ignore[misc]
        fields = config_fields(owner)
    field = fields[name]
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """--data/--output, --config, every option of the table and the switches; unset ones stay unset."""
    parser.add_argument("--data", help="folder with the two CSVs (or data_dir in --config)")
    parser.add_argument("--output", help="folder for artifacts, metadata, reports and served models (or output_dir in --config)")
    parser.add_argument("--config", metavar="FILE", help="YAML file of PipelineConfig settings (transform/model/export as sections); flags override it")
    for option in OPTIONS:
        parser.add_argument(option.flag, dest=_dest(option.path), type=option.type, choices=option.choices, default=argparse.SUPPRESS,
                            help=f"{option.help} (default: {default_of(option.path)})")
    for flag, path, value, text in SWITCHES:
        parser.add_argument(flag, dest=_dest(path), action="store_const", const=value, default=argparse.SUPPRESS, help=text)
    parser.add_argument(
        "--beam_pipeline_args", action="append", default=None,
        help="Beam options as one string, e.g. '--direct_num_workers=4' (repeatable); or give them after a bare '--' "
        "(default: the multi-processing DirectRunner on all cores)",
    )


def _set(values: Dict[str, Any], path: str, value: Any) -> None:
    *sections, name = path.split(".")
    for section in sections:
        values = values.setdefault(section, {})
    values[name] = value


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The PipelineConfig a command line asks for: defaults < --config file < flags."""
    values: Dict[str, Any] = copy.deepcopy(load_config_file(args.config)) if getattr(args, "config", None) else {}
    if not isinstance(values, dict):
        raise ConfigError(f"{args.config}: expected a mapping of settings (key: value lines), got {type(values).__name__}")
    for path in [o.path for o in OPTIONS] + [s[1] for s in SWITCHES]:
        if hasattr(args, _dest(path)):
            _set(values, path, getattr(args, _dest(path)))
    if args.data:
        values["data_dir"] = args.data
    if args.output:
        values["output_dir"] = args.output
    beam: List[str] = [arg for chunk in args.beam_pipeline_args or [] for arg in shlex.split(chunk)] + list(getattr(args, "beam_extra", []))
    if beam:
        values["beam_pipeline_args"] = beam
    return config_from_mapping(values, where=args.config or "command line")
