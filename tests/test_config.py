"""The configs: defaults written once, and what a component is given is rebuilt exactly."""

import dataclasses

import pytest

from models.config import ExportConfig, ModelConfig, TransformConfig, as_custom_config, from_custom_config
from pipeline.config import PipelineConfig


def test_component_configs_round_trip_through_custom_config():
    config = PipelineConfig(data_dir="d", output_dir="o", transform=TransformConfig(max_categories=8), model=ModelConfig(epochs=3))
    assert from_custom_config(TransformConfig, config.transform_config()) == config.transform
    trainer = config.trainer_config()
    assert from_custom_config(ModelConfig, trainer["model"]) == config.model
    assert from_custom_config(ExportConfig, trainer["export"]) == config.export


def test_an_unknown_setting_is_an_error_never_ignored():
    with pytest.raises(ValueError, match="TransformConfig has no setting star_wieght"):
        from_custom_config(TransformConfig, {"star_wieght": 1.0})


def test_missing_custom_config_means_the_defaults():
    assert from_custom_config(ModelConfig, None) == ModelConfig()


@pytest.mark.parametrize("make, message", [
    (lambda: TransformConfig(follower_scaling="sqrt"), "follower_scaling"),
    (lambda: TransformConfig(max_categories=0), "max_categories"),
    (lambda: ExportConfig(default_k=600), "default_k"),
    (lambda: PipelineConfig(data_dir="d", output_dir="o", batch_score_k=500), "batch_score_k"),
])
def test_invalid_settings_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_custom_config_is_plain_json_data():
    assert as_custom_config(ExportConfig()) == dataclasses.asdict(ExportConfig())


@pytest.mark.parametrize("values, message", [
    ({"model": {"epochs": "ten"}}, "model.epochs: expected an integer or null, got 'ten'"),
    ({"model": {"epochs": 0}}, "model.epochs must be >= 1, got 0"),
    ({"model": {"epochs": 2.5}}, "model.epochs: expected an integer or null, got 2.5"),
    ({"model": {"batch_size": -5}}, "model.batch_size must be >= 1, got -5"),
    ({"model": {"embedding_dim": 0}}, "model.embedding_dim must be >= 1"),
    ({"model": {"learning_rate": "fast"}}, "model.learning_rate: expected a number, got 'fast'"),
    ({"model": {"target_share": 1.0}}, "model.target_share must be > 0 and < 1"),
    ({"max_rmse": "high"}, "max_rmse: expected a number, got 'high'"),
    ({"eval_ratio": "0.2"}, "eval_ratio: expected a number, got '0.2'"),
    ({"enable_cache": "false"}, "enable_cache: expected true or false, got 'false'"),
    ({"beam_pipeline_args": "--runner=x"}, "beam_pipeline_args: expected a list of strings or null"),
    ({"export": {"max_k": 0}}, "export.max_k must be >= 1"),
    ({"model_name": "a/b"}, "model_name must be a non-empty name without '/'"),
    ({"eval_ratoi": 0.2}, "unknown key 'eval_ratoi' (did you mean 'eval_ratio'?)"),
    ({"model": {"epocs": 3}}, "unknown key model.'epocs' (did you mean 'epochs'?)"),
])
def test_every_config_value_is_checked_naming_the_key_the_value_and_what_was_expected(values, message):
    from pipeline.config import ConfigError, config_from_mapping

    with pytest.raises(ConfigError) as error:
        config_from_mapping({"data_dir": "d", "output_dir": "o", **values}, "c.yaml")
    assert str(error.value).startswith("c.yaml: ") and message in str(error.value)


def test_an_integer_is_a_number_and_null_is_none():
    from pipeline.config import config_from_mapping

    config = config_from_mapping({"data_dir": "d", "output_dir": "o", "max_rmse": 1, "model": {"epochs": None, "learning_rate": 1}}, "c.yaml")
    assert config.max_rmse == 1 and config.model.epochs is None
