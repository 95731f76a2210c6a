"""Data safety (issue 11): never over an input, no silent overwrite, nothing partial, user modes.

Real files from ../shared/data are copied into tmp_path; each test checks the inputs' md5
before and after and lists the folder afterwards for leftovers (temporary ``.name.*``).
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from safety_helpers import ISSUE, ROOT, cli, leftovers, listing, md5s, one_line_error, predict

from nowcast.errors import NowcastError
from nowcast.fileio import atomic_output, check_output, write_atomic


@pytest.fixture
def mch(tmp_path, shared_data) -> Path:
    """A copy of the real MeteoSwiss event in tmp_path/in/."""
    folder = tmp_path / "in"
    folder.mkdir()
    target = folder / "mch-2016-07-11.nc"
    shutil.copyfile(shared_data / "radar" / "mch-2016-07-11.nc", target)
    return target


# --------------------------------------------------------------------------- 1. output = input


@pytest.mark.parametrize(
    "inputs, output, message",
    [
        (["{f}"], "{f}", "is the input"),  # absolute
        (["in/mch-2016-07-11.nc"], "in/mch-2016-07-11.nc", "is the input"),  # relative
        (["in/*.nc"], "{f}", "is the input"),  # through a glob
        (["{d}"], "{f}", "is the input"),  # a file inside an input folder
        (["{d}"], "{d}/new.nc", "is inside the input"),  # a new file inside an input folder
        (["{f}"], "{d}", "holds the input"),  # the folder that holds the input
        (["{hard}"], "{f}", "is the input"),  # the same file through a hard link
    ],
)
def test_predict_refuses_an_output_that_is_an_input(
    mch, tmp_path, monkeypatch, inputs, output, message
):
    monkeypatch.chdir(tmp_path)
    os.link(mch, tmp_path / "hard.nc")
    names = {"f": mch, "d": mch.parent, "hard": tmp_path / "hard.nc"}
    before, files = md5s(tmp_path), listing(tmp_path)
    args = [a for i in inputs for a in ("-i", i.format(**names))]
    res = cli(
        "predict",
        "--method",
        "persistence",
        *args,
        "--issue-time",
        ISSUE,
        "-o",
        output.format(**names),
    )
    one_line_error(res, message)
    assert md5s(tmp_path) == before and listing(tmp_path) == files


def test_predict_refuses_to_write_over_its_model(tmp_path, mch):
    run = tmp_path / "run"
    shutil.copytree(ROOT / "nowcast" / "pretrained" / "radar-5min", run)
    before = md5s(tmp_path)
    for target in (run / "model.keras", run / "metadata.json", run):
        res = cli("predict", "--model", run, "-i", mch, "--issue-time", ISSUE, "-o", target)
        one_line_error(res, "is the input" if target != run else "holds the input")
    assert md5s(tmp_path) == before and not leftovers(tmp_path)


def test_convert_refuses_its_input_file_and_store(tmp_path, mch):
    res = cli("convert", mch, "-o", mch)
    one_line_error(res, "is the input")
    store = tmp_path / "s.zarr"
    assert cli("convert", mch, "-o", store).exit_code == 0
    before = md5s(tmp_path)
    one_line_error(cli("convert", store, "-o", store), "is the input")
    one_line_error(cli("convert", mch.parent, "-o", mch.parent / "x.zarr"), "inside the input")
    assert md5s(tmp_path) == before and not leftovers(tmp_path)


def test_reports_and_maps_never_go_into_an_input_folder(tmp_path, mch):
    fc = tmp_path / "fc.nc"
    res = predict(mch, fc, "--method", "persistence", "--issue-time", ISSUE, "--leads", "1")
    assert res.exit_code == 0, res.output
    before = md5s(tmp_path)
    args = ["-f", fc, "--truth", mch.parent, "--no-plots"]
    one_line_error(cli("evaluate", *args, "-o", mch.parent / "report"), "inside the input")
    one_line_error(cli("render", fc, "--truth", mch.parent, "-o", mch.parent), "is the input")
    assert md5s(tmp_path) == before and not leftovers(tmp_path)


# --------------------------------------------------------------------------- 1. other outputs


def test_an_existing_output_is_replaced_only_with_overwrite(tmp_path, mch, shared_data):
    from nowcast.products import read_forecast

    fc = tmp_path / "fc.zarr"
    base = ["predict", "--method", "persistence", "-i", mch, "-o", fc, "--leads", "2"]
    assert cli(*base, "--issue-time", ISSUE).exit_code == 0
    before = md5s(tmp_path)
    one_line_error(cli(*base, "--issue-time", "2016-07-11T21:40"), "exists", "--overwrite")
    assert md5s(tmp_path) == before
    res = cli(*base, "--issue-time", "2016-07-11T21:40", "--overwrite")
    assert res.exit_code == 0, res.output
    assert str(read_forecast(fc).issue_time.values[0]).startswith("2016-07-11T21:40")

    store = tmp_path / "other.zarr"  # convert: a store holding other data is not replaced ...
    assert cli("convert", mch, "-o", store).exit_code == 0
    kept = md5s(store)
    other = shared_data / "radar" / "mch-2015-05-15.nc"
    one_line_error(cli("convert", other, "-o", store), "exists", "--overwrite")
    assert md5s(store) == kept
    res = cli("convert", mch, "-o", store, "--overwrite")  # ... unless asked to
    assert res.exit_code == 0, res.output
    assert not leftovers(tmp_path)


def test_check_output_rules(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.nc").write_bytes(b"x")
    (tmp_path / "link").symlink_to(data)
    with pytest.raises(NowcastError, match="is the input"):
        check_output(tmp_path / "link" / "a.nc", [data / "a.nc"])
    with pytest.raises(NowcastError, match="holds the input"):
        check_output(tmp_path, [data / "a.nc"])
    check_output(tmp_path, [data / "a.nc"], replaces=False)  # a folder output that fills in files
    check_output("s3://bucket/out.nc", [data])  # remote outputs: not compared
    with pytest.raises(NowcastError, match="exists: pass --overwrite"):
        check_output(data / "a.nc", [], overwrite=False)


# --------------------------------------------------------------------------- 8. write errors


def test_write_errors_name_the_output_not_the_temporary(tmp_path, mch, monkeypatch):
    real = tempfile.mkdtemp

    def denied(*args, **kwargs):
        tmp = real(*args, **kwargs)
        os.rmdir(tmp)
        raise PermissionError(13, "Permission denied", tmp)  # what a read-only folder gives

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    out = tmp_path / "out" / "fc.nc"
    res = predict(mch, out, "--method", "persistence", "--issue-time", ISSUE)
    line = one_line_error(res, f"cannot write {out}: Permission denied")
    assert ".fc.nc." not in line and not leftovers(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(tmp_path, mch):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        res = predict(mch, out / "fc.nc", "--method", "persistence", "--issue-time", ISSUE)
        one_line_error(res, f"cannot write {out / 'fc.nc'}")
    finally:
        out.chmod(0o755)
    assert listing(out) == []


# --------------------------------------------------------------------------- 11. file modes


@pytest.mark.slow
@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_outputs_get_the_users_umask(tmp_path, mch, umask):
    from nowcast.trained.rundir import RunDir

    old = os.umask(umask)
    try:
        fc = tmp_path / "fc.nc"
        res = predict(mch, fc, "--method", "persistence", "--issue-time", ISSUE, "--leads", "1")
        assert res.exit_code == 0, res.output
        res = cli("evaluate", "-f", fc, "--truth", mch, "-o", tmp_path / "report")
        assert res.exit_code == 0, res.output
        RunDir(tmp_path / "run").write_state({"epoch": 1})
        made = [fc, tmp_path / "report", tmp_path / "run" / "state.json"]
        made += sorted((tmp_path / "report").iterdir())
        made.append(write_atomic(tmp_path / "map.png", b"png"))
    finally:
        os.umask(old)
    for path in made:
        want = (0o777 if path.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(path.stat().st_mode) == want, path


# --------------------------------------------------------------------------- 4. interrupts


def test_atomic_output_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "out.zarr"
    target.mkdir()
    (target / "old").write_text("kept")
    with pytest.raises(KeyboardInterrupt), atomic_output(target) as tmp:
        tmp.mkdir()
        (tmp / "half").write_text("partial")
        raise KeyboardInterrupt
    assert listing(tmp_path) == ["out.zarr", "out.zarr/old"]


def test_atomic_output_removes_the_folders_it_created_when_nothing_was_placed(tmp_path):
    (tmp_path / "old").mkdir()
    with pytest.raises(ValueError), atomic_output(tmp_path / "old" / "a" / "b" / "f.nc") as tmp:
        tmp.write_text("partial")
        raise ValueError("a failed write")
    assert listing(tmp_path) == ["old"]  # "old" was there before: it stays
    with atomic_output(tmp_path / "new" / "f.nc") as tmp:
        tmp.write_text("whole")
    assert listing(tmp_path) == ["new", "new/f.nc", "old"]


def test_a_quoted_tilde_is_the_home_folder(tmp_path, mch, monkeypatch):
    """``--output "~/fc.nc"`` (the shell leaves a quoted ``~``): written under $HOME, not
    into a new folder named ``~``; also for an input and for ``--option=~/...``."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(mch, home / "in.nc")
    res = cli("predict", "-i", "~/in.nc", "--output=~/fc.nc", "--method", "persistence",
              "--issue-time", ISSUE, "--leads", "1")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (home / "fc.nc").is_file() and not (tmp_path / "~").exists()


def test_the_cli_expands_a_leading_tilde_like_a_shell(monkeypatch):
    from nowcast.cli import home_expanded

    monkeypatch.setenv("HOME", "/home/forecaster")
    assert home_expanded("~/runs/q") == "/home/forecaster/runs/q"
    assert home_expanded("--output=~/fc.nc") == "--output=/home/forecaster/fc.nc"
    for kept in ("runs/~q", "--region=7,46,8,47", "-o", "a~b", "--set=x=~"):
        assert home_expanded(kept) == kept


def _terminal_sigint() -> None:
    """Ctrl-C as in a terminal, also when the tests run as a background job (``cmd &``
    starts with SIGINT ignored, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_when(cmd: list[str], pattern: str, folder: Path, env=None, timeout=240):
    """Start ``cmd`` in its own process group, SIGINT the group once ``pattern`` exists."""
    proc = subprocess.Popen(
        cmd,
        start_new_session=True,
        preexec_fn=_terminal_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not list(folder.glob(pattern)):
        assert time.monotonic() < deadline, "the command never started writing"
        time.sleep(0.01)
    sent = proc.poll() is None
    if sent:
        os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out, sent


@pytest.mark.slow
def test_ctrl_c_during_convert_leaves_no_partial_store(tmp_path, shared_data):
    # the real signal: SIGINT to the process group while the store is being written
    source = shared_data / "radar" / "bom-66-2020-10-31"
    cmd = [
        sys.executable,
        "-m",
        "nowcast.cli",
        "convert",
        str(source),
        "-o",
        f"{tmp_path}/bom.zarr",
    ]
    # On a loaded machine the signal can land just after the store was renamed into place
    # (the work is done, exit 0): then the complete store is the only entry; try again.
    for _ in range(3):
        rc, out, sent = _interrupt_when(cmd, ".bom.zarr.*", tmp_path)
        if sent and rc == 0 and "wrote" in out:
            assert leftovers(tmp_path) == [] and (tmp_path / "bom.zarr").is_dir(), out
            shutil.rmtree(tmp_path / "bom.zarr")
            continue
        break
    assert sent, "convert finished before the signal"
    # 130, or (seen once on a loaded 2-core machine, not reproduced) ended by the SIGINT
    # itself after saying so, which a shell reports as 130 too; either way one line and
    # nothing left behind
    assert rc in (130, -signal.SIGINT) and out.strip() == "Interrupted.", out
    assert listing(tmp_path) == []


def test_children_of_a_batch_cluster_ignore_ctrl_c():
    from nowcast.interrupts import children_ignore_interrupts

    probe = "import signal; print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)"
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with children_ignore_interrupts():  # as pipelines.runner starts its cluster
            inside = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        after = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        assert inside.stdout.strip() == "True" and after.stdout.strip() == "False"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, outer)


def test_interrupted_batch_removes_its_temporary_outputs(tmp_path, monkeypatch):
    import pipelines.runner as runner
    from nowcast.archive.synthetic import write_synthetic_archive
    from nowcast.config import BatchConfig, BatchRenderConfig
    from pipelines.outputs import forecast_path, maps_dir

    write_synthetic_archive(tmp_path / "arch", one_file_per_time=True, n_times=6, ny=8, nx=8)
    out = tmp_path / "out"
    cfg = BatchConfig(
        inputs=(str(tmp_path / "arch"),),
        output=str(out),
        methods=("persistence",),
        n_leads=2,
        render=BatchRenderConfig(enabled=False),
    ).validate()
    other = maps_dir(out, "persistence", __import__("pandas").Timestamp("2000-01-01"))
    stranger = other.parent / f".{other.name}.abcd1234"  # another batch's issue time: kept

    def interrupted(client, tasks, **kwargs):  # what workers stopped mid-write leave
        for task in tasks:
            for path in (
                forecast_path(out, "persistence", task.issue_time),
                maps_dir(out, "persistence", task.issue_time),
            ):
                (path.parent / f".{path.name}.x1y2z3").mkdir(parents=True)
        stranger.mkdir(parents=True, exist_ok=True)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_tasks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runner.run_batch(cfg, client=object(), progress=False)
    assert leftovers(out) == [str(stranger.relative_to(out))]


@pytest.mark.slow
def test_convlstm_predict_on_torch_never_imports_jax(tmp_path, mch):
    # JAX's GC callback could swallow a Ctrl-C during predict: on torch it must not be loaded
    probe = (
        "import sys\n"
        "from nowcast.cli import main\n"
        f"main(['predict', '--model', 'radar-5min', '-i', {str(mch)!r}, '--issue-time', "
        f"'{ISSUE}', '--leads', '1', '-o', {str(tmp_path / 'fc.nc')!r}], standalone_mode=False)\n"
        "print('jax' in sys.modules)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "torch", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "False" and (tmp_path / "fc.nc").is_file()
