"""Training: a real learning test, run-directory contents, resume, bad configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nowcast.config import load_config
from nowcast.errors import ConfigError, NowcastError

ROOT = Path(__file__).resolve().parents[1]

#: What a run directory holds (besides tensorboard/), as the README documents it.
RUN_FILES = (
    "model.keras",
    "checkpoint.keras",
    "state.json",
    "metadata.json",
    "config.yaml",
    "history.csv",
)

# A tiny advection problem: cells move 2 px/step east and 1 px/step north, no growth.
ARCHIVE = dict(
    n_times=64,
    ny=32,
    nx=32,
    seed=3,
    n_cells=5,
    velocity=(2.0, 1.0),
    cell_size=(2.5, 4.0),
    max_rate=20.0,
)


def _cfg(events, *extra):
    base = [
        f"data.events=[{events}]",
        "sampler.t_in=3",
        "sampler.t_out=3",
        "sampler.patch_size=24",
        "sampler.batch_size=8",
        "sampler.split.validation=0.25",
        "model.filters=[8]",
        "model.downsample=2",
        "train.loss=mae",
        "train.lr_schedule=constant",
        "train.learning_rate=0.005",
        "train.validation_steps=2",
    ]
    return load_config(None, base + list(extra))


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from nowcast.archive.synthetic import write_synthetic_archive

    return write_synthetic_archive(tmp_path_factory.mktemp("arch") / "adv.nc", **ARCHIVE)[0]


def _persistence_loss(validation) -> float:
    """Masked MAE of persistence (last input frame for every lead) on the validation batches."""
    num = den = 0.0
    for i in range(len(validation)):
        x, y, w = validation[i]
        pred = np.repeat(x[:, -1:], y.shape[1], axis=1)
        num += float((np.abs(pred - y) * w).sum())
        den += float(w.sum())
    return num / den


#: Every recurrent cell, as ``--set`` overrides.
CELLS = {
    "stock": ["model.cell=stock"],
    "fused": ["model.cell=fused"],
    "peephole": ["model.cell=fused", "model.peephole=true"],
    "gru": ["model.cell=gru"],
}


@pytest.mark.slow
@pytest.mark.parametrize("cell", list(CELLS))
def test_learns_advection_better_than_persistence(archive, tmp_path, cell):
    """After 60 steps a one-layer network of each cell beats persistence clearly on
    held-out windows.

    Threshold 0.8: on pure translation at 1-2 px/step, persistence's error grows with
    every lead, while a 3x3 kernel on a 2x-downsampled grid covers the displacement, so
    a model that learned the motion must cut the masked MAE well below persistence's.
    An untrained or mean-predicting model scores at or above persistence here.
    """
    from nowcast.training import train
    from nowcast.trainset.build import build_datasets

    cfg = _cfg(
        archive,
        "train.epochs=5",
        "train.steps_per_epoch=12",
        "train.early_stopping_patience=10",
        *CELLS[cell],
    )
    assert (cfg.model.cell, cfg.model.peephole) == {
        "stock": ("stock", False),
        "fused": ("fused", False),
        "peephole": ("fused", True),
        "gru": ("gru", False),
    }[cell]
    result = train(cfg, run_dir=tmp_path / "run", verbose=0, echo=lambda m: None)
    datasets = build_datasets(cfg)
    persistence = _persistence_loss(datasets.validation)
    assert result.best_val_loss is not None
    assert result.best_val_loss < 0.8 * persistence, (result.best_val_loss, persistence)


@pytest.mark.slow
def test_run_directory_and_resume(archive, tmp_path):
    from nowcast.training import train

    run = tmp_path / "run"
    cfg = _cfg(archive, "train.epochs=1", "train.steps_per_epoch=3")
    first = train(cfg, run_dir=run, verbose=0, echo=lambda m: None)
    assert first.epochs_run == 1
    for name in RUN_FILES:
        assert (run / name).exists(), name
    assert list((run / "tensorboard").iterdir()), "no TensorBoard event file"
    meta = json.loads((run / "metadata.json").read_text())
    assert meta["t_in"] == 3 and meta["t_out"] == 3 and meta["time_step_seconds"] == 300
    assert meta["units"] == "mm h-1" and meta["preprocessor"]["transform"] == "log"

    import keras

    step_after_first = int(
        keras.ops.convert_to_numpy(
            keras.saving.load_model(run / "checkpoint.keras").optimizer.iterations
        )
    )
    assert step_after_first == 3

    with pytest.raises(NowcastError, match="--resume"):
        train(cfg, run_dir=run, verbose=0, echo=lambda m: None)

    messages = []
    cfg2 = _cfg(archive, "train.epochs=2", "train.steps_per_epoch=3")
    second = train(cfg2, run_dir=run, resume=True, verbose=0, echo=messages.append)
    assert second.epochs_run == 1
    assert any("resuming at epoch 2 (optimizer step 3)" in m for m in messages), messages
    state = json.loads((run / "state.json").read_text())
    assert state["epoch"] == 2
    ckpt = keras.saving.load_model(run / "checkpoint.keras")
    assert (
        int(keras.ops.convert_to_numpy(ckpt.optimizer.iterations)) == 6
    )  # optimizer state carried on
    rows = (run / "history.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]


def test_resume_without_checkpoint_is_an_error(archive, tmp_path):
    from nowcast.training import train

    with pytest.raises(NowcastError, match="no checkpoint"):
        train(_cfg(archive), run_dir=tmp_path / "empty", resume=True, echo=lambda m: None)


@pytest.mark.parametrize(
    "override, match",
    [
        ("sampler.t_out=0", "t_out must be >= 1"),
        ("sampler.patch_size=64", "patch"),
        ("model.filterz=[4]", "model.filterz"),
    ],
)
def test_bad_config_fails_before_training(archive, tmp_path, override, match):
    from click.testing import CliRunner

    from nowcast.cli import main

    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(
        f"data:\n  events: [{archive}]\nsampler:\n  t_in: 3\n  t_out: 3\n  patch_size: 24\n"
    )
    run = tmp_path / "run"
    result = CliRunner().invoke(
        main, ["train", str(cfg_path), "--set", override, "--output", str(run)]
    )
    assert result.exit_code != 0
    assert match in result.output
    assert "Traceback" not in result.output
    assert not (run / "checkpoint.keras").exists()


def test_crop_larger_than_grid_is_config_error(archive):
    from nowcast.trainset.build import build_datasets

    with pytest.raises((ConfigError, NowcastError), match="patch"):
        build_datasets(_cfg(archive, "sampler.patch_size=40"))


def test_run_dir_names_and_json(tmp_path):
    from nowcast.trained import RunDir

    run = RunDir(tmp_path / "run")
    names = [run.model, run.checkpoint, run.state, run.metadata, run.config, run.history]
    assert tuple(p.name for p in names) == RUN_FILES
    assert run.tensorboard == tmp_path / "run" / "tensorboard"
    with pytest.raises(NowcastError, match="no metadata.json in .*: not a nowcast run directory"):
        run.read_metadata()
    assert run.read_state() == {}
    run.write_state({"epoch": 2, "best_val_loss": 0.5})
    run.write_metadata({"t_in": 3, "path": tmp_path})
    assert run.read_state() == {"epoch": 2, "best_val_loss": 0.5}
    assert run.read_metadata() == {"t_in": 3, "path": str(tmp_path)}


def test_demo_config_trains_on_a_fresh_checkout(tmp_path, torch_single_thread):
    """configs/demo.yaml names an archive that does not exist yet: train writes it first."""
    from click.testing import CliRunner

    from nowcast.cli import main

    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(ROOT / "configs" / "demo.yaml", configs / "demo.yaml")
    tiny = [
        "data.synthetic={n_times: 64, ny: 32, nx: 32, seed: 1, cells: evolving}",
        "sampler.patch_size=16", "model.filters=[4]", "train.epochs=1",
        "train.steps_per_epoch=1", "train.validation_steps=1",
        f"data.cache_dir={tmp_path / 'stores'}",  # the Lagrangian windows, not ~/.cache
    ]  # fmt: skip
    args = ["train", str(configs / "demo.yaml"), "--output", str(tmp_path / "run")]
    res = CliRunner().invoke(main, [*args, *(a for t in tiny for a in ("--set", t))])
    assert res.exit_code == 0, res.output
    archive = tmp_path / "demo-output" / "data" / "synthetic.nc"  # beside configs/, as written
    assert f"wrote the synthetic archive {archive}" in res.output and archive.is_file()
    assert (tmp_path / "run" / "model.keras").is_file()
    # a missing archive without data.synthetic: the error names the resolved path
    gone = ["--set", "data.synthetic=null", "--set", "data.events=[gone.nc]"]
    res = CliRunner().invoke(main, ["train", str(configs / "demo.yaml"), *gone])
    assert res.exit_code == 1 and f"(resolved: {Path.cwd() / 'gone.nc'})" in res.output
