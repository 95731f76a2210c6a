"""Config loading and validation: unknown/mistyped keys, overrides, cross-field rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nowcast.config import Config, ConfigError, load_config, parse_override

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "name", ["demo", "radar-5min", "radar-5min-eulerian", "bom-10min", "era5-t2m"]
)
def test_shipped_configs_load(name):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert cfg.name == name
    assert cfg.sampler.t_in >= 1 and cfg.sampler.t_out >= 1


def test_shipped_config_paths_resolve_to_shared_data(shared_data):
    cfg = load_config(REPO / "configs" / "radar-5min.yaml")
    assert len(cfg.data.events) == 6
    for event in cfg.data.events:
        assert Path(event).exists(), event
    assert set(cfg.sampler.split.holdout_events) <= set(cfg.data.events)


def test_demo_config_matches_embedded():
    shipped = yaml.safe_load((REPO / "configs" / "demo.yaml").read_text())
    embedded = yaml.safe_load((REPO / "nowcast" / "resources" / "demo.yaml").read_text())
    shipped["data"].pop("events")
    embedded["data"].pop("events")
    assert shipped == embedded


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  filterz: [8]\n")
    with pytest.raises(ConfigError, match=r"model\.filterz"):
        load_config(path)


def test_unknown_section_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("modle:\n  filters: [8]\n")
    with pytest.raises(ConfigError, match="'modle'"):
        load_config(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("sampler.t_out=0", "t_out must be >= 1"),
        ("sampler.t_in=1.5", "sampler.t_in: expected an integer"),
        ("model.cell=lstm", "model.cell: 'lstm' is not one of"),
        ("train.learning_rate=fast", "train.learning_rate: expected a number"),
        ("sampler.augment=3", "sampler.augment: expected true or false"),
        ("model.kernel_size=4", "kernel_size must be odd"),
        ("preprocess.crop_x=[10, 5]", "crop_x must be"),
        ("sampler.split.validation=0.7", None),
    ],
)
def test_bad_values(override, message):
    overrides = [override] + (["sampler.split.test=0.5"] if message is None else [])
    with pytest.raises(ConfigError, match=message or "validation \\+ test must be < 1"):
        load_config(None, overrides)


@pytest.mark.parametrize("cell", ["stock", "gru"])
def test_peephole_is_for_the_fused_cell_only(cell):
    assert load_config(None, ["model.peephole=true"]).model.peephole  # the default cell: fused
    with pytest.raises(ConfigError, match=f"model.peephole needs model.cell: fused, got .*{cell}"):
        load_config(None, ["model.peephole=true", f"model.cell={cell}"])


def test_overrides_apply_nested_values():
    cfg = load_config(
        None,
        [
            "model.filters=[8, 16, 32]",
            "sampler.split.test_period=[2019-03-25, 2019-03-31]",
            "name=x",
        ],
    )
    assert cfg.model.filters == (8, 16, 32)
    assert cfg.sampler.split.test_period == ("2019-03-25", "2019-03-31")
    assert cfg.name == "x"


def test_parse_override_rejects_missing_equals():
    with pytest.raises(ConfigError, match="expected section.key=value"):
        parse_override("model.filters")


def test_temperature_rejects_rain_transform():
    with pytest.raises(ConfigError, match="zscore"):
        load_config(None, ["data.kind=temperature", "preprocess.transform=log"])


def test_roundtrip_to_dict():
    cfg = load_config(None, ["model.filters=[4]"])
    from nowcast.config import config_from_dict

    assert config_from_dict(cfg.to_dict()) == cfg
    assert isinstance(cfg, Config)


def test_missing_file_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_model_frame_values_are_the_frame_enum():
    """``model.frame`` stays a string in configs; its values are :class:`Frame`'s."""
    import typing

    from nowcast.config.experiment import ModelConfig
    from nowcast.conventions import Frame

    frame = typing.get_type_hints(ModelConfig)["frame"]
    assert set(typing.get_args(frame)) == {f.value for f in Frame}
    assert ModelConfig().frame == Frame.EULERIAN and f"{Frame.LAGRANGIAN}" == "lagrangian"
