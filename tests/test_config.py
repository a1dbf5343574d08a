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
