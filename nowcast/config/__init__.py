"""Typed configuration, loaded from YAML and validated.

:mod:`~nowcast.config.experiment`: the experiment config (``Config``: data, preprocess,
sampler, model, train; :func:`load_config`); :mod:`~nowcast.config.batch`: the batch config
(``BatchConfig``, :func:`load_batch_config`); :mod:`~nowcast.config.loading`: YAML,
``--set`` overrides and the typed dataclass builder both use.
"""

from nowcast.config.batch import BatchConfig, BatchRenderConfig, load_batch_config
from nowcast.config.experiment import (
    Config,
    DataConfig,
    FlowConfig,
    Kind,
    KindChoice,
    ModelConfig,
    PreprocessConfig,
    SamplerConfig,
    SplitConfig,
    TrainConfig,
    Transform,
    check_cell,
    config_from_dict,
    dump_config,
    load_config,
)
from nowcast.config.loading import apply_overrides, parse_override, read_yaml
from nowcast.config.series import SeriesConfig
from nowcast.errors import ConfigError

__all__ = [
    "BatchConfig",
    "BatchRenderConfig",
    "Config",
    "ConfigError",
    "DataConfig",
    "FlowConfig",
    "Kind",
    "KindChoice",
    "ModelConfig",
    "PreprocessConfig",
    "SamplerConfig",
    "SeriesConfig",
    "SplitConfig",
    "TrainConfig",
    "Transform",
    "apply_overrides",
    "check_cell",
    "config_from_dict",
    "dump_config",
    "load_batch_config",
    "load_config",
    "parse_override",
    "read_yaml",
]
