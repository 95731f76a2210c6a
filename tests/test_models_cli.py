"""`nowcast models`: every shipped model described from its own files."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from nowcast.cli import main
from nowcast.trained.catalogue import (
    PRETRAINED_DIR,
    describe_model,
    heldout_scores,
    packaged_models,
)


def test_models_lists_every_shipped_model_from_its_metadata():
    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0, res.output
    names = packaged_models()
    assert names and all(f"{name}: " in res.output for name in names)
    for name in names:
        meta = json.loads((PRETRAINED_DIR / name / "metadata.json").read_text())
        block = res.output.split(f"{name}: ", 1)[1].split("\n\n", 1)[0]
        assert f"{meta['variable']} ({meta['units']})" in block
        assert f"{meta['t_in']} frames in" in block and f"{meta['t_out']} out" in block
        assert "held-out scores" in block and "trained on:" in block


def test_a_model_is_described_by_its_own_files(tmp_path):
    """A copied model with other metadata and notes: the description follows them."""
    src = PRETRAINED_DIR / "era5-t2m"
    dst = tmp_path / "my-model"
    dst.mkdir()
    meta = json.loads((src / "metadata.json").read_text())
    meta.update(t_in=3, time_step_seconds=1800.0, frame="lagrangian")
    (dst / "metadata.json").write_text(json.dumps(meta))
    shutil.copy(src / "model.keras", dst / "model.keras")
    lines = describe_model(dst)
    assert lines[0].startswith("my-model: t2m (K), temperature, step 30 min, 3 frames in (90 min)")
    assert "  frame: lagrangian (archives with a step of 15 min to 90 min)" in lines[1]
    assert any("none recorded" in line for line in lines)
    (dst / "TRAINING.md").write_text(
        "# x\n\n## Held-out scores\n- RMSE 1.0 K\n  at 1 h.\n- second\n\n## Other\n- not this\n"
    )
    assert heldout_scores((dst / "TRAINING.md").read_text()) == ["RMSE 1.0 K at 1 h.", "second"]
    assert "    RMSE 1.0 K at 1 h." in describe_model(dst)
