"""A run or sweep directory is data even when it lies (issue 25): typed, bounded reads; YAML
without aliases; no write through a symlink; what a refused resume put back; the terminal
as a view; checkpoints with impossible fields; saved group values that would name a file.
Fast, in-process: the end-to-end reproductions are in test_trust.py and test_faults.py."""

from __future__ import annotations

import errno
import io
import os
import time

import pytest
import torch

from conftest import fifo
from normbench import files, streams, trust
from normbench.checkpoint import load_checkpoint
from normbench.errors import UsageError, disk_problem
from normbench.extension import cut_after


def test_only_regular_files_within_their_bound_are_read(tmp_path):
    (tmp_path / "ok.csv").write_text("a,b\n1,2\n")
    assert files.read_bytes(tmp_path / "ok.csv", 100) == b"a,b\n1,2\n"
    fifo(tmp_path / "fifo")
    t0 = time.monotonic()
    with pytest.raises(files.BadFile, match="fifo is a FIFO, not a regular file"):
        files.read_bytes(tmp_path / "fifo", 100)  # O_NONBLOCK: no writer, no hang
    assert time.monotonic() - t0 < 5
    with pytest.raises(files.BadFile, match="is larger than"):
        files.read_bytes(tmp_path / "ok.csv", 4)
    with pytest.raises(files.BadFile, match="is a directory"):
        files.read_bytes(tmp_path, 100)


def test_a_symlink_is_followed_only_to_a_file_inside_its_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (tmp_path / "secret").write_text("root:x:0:0\n")
    (run / "inside.csv").write_text("step\n1\n")
    (run / "outside.csv").symlink_to(tmp_path / "secret")
    (run / "zero.csv").symlink_to("/dev/zero")
    (run / "alias.csv").symlink_to("inside.csv")
    assert files.read_bytes(run / "alias.csv", 100, within=run) == b"step\n1\n"
    for name in ("outside.csv", "zero.csv"):
        with pytest.raises(files.BadFile, match="a symlink leading outside its directory"):
            files.read_bytes(run / name, 100, within=run)
    with pytest.raises(files.BadFile, match="is a symlink"):  # no directory to stay inside: never followed
        files.read_bytes(run / "alias.csv", 100)


def test_yaml_with_anchors_or_aliases_is_refused_before_it_expands(tmp_path):
    laughs = ["a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    laughs += [f"{x}: &{x} [*{y},*{y},*{y},*{y},*{y},*{y},*{y},*{y},*{y}]" for x, y in zip("bcdefghi", "abcdefgh")]
    (tmp_path / "overrides.yaml").write_text("- {" + ", ".join(laughs) + "}\n")  # the 433-byte file
    t0 = time.monotonic()
    with pytest.raises(files.BadFile, match="anchors or aliases"):
        files.load_yaml(tmp_path / "overrides.yaml")
    assert time.monotonic() - t0 < 5
    (tmp_path / "plain.yaml").write_text("- lr=0.1\n- norm=gn\n")
    assert files.load_yaml(tmp_path / "plain.yaml") == ["lr=0.1", "norm=gn"]
    with pytest.raises(UsageError, match="refused: overrides.yaml holds YAML anchors or aliases"):
        trust.read_overrides(tmp_path / "overrides.yaml", "resume=x: .hydra/overrides.yaml")


@pytest.mark.parametrize("saved, why", [
    ("experiment=../../../../proc/self/cwd/s/evil", "is not the name of an option of experiment"),
    ("experiment='/tmp/evil'", "is not the name of an option of experiment"),
    ("norm=nope", "nope is not an option of norm (options: bn, bn_ghost"),
    ("experiment=glob(*)", "a group's value must list option names"),
    ("norm@_global_=ln", "it moves a config group (@package)"),
    ("model@norm=cnn", "it moves a config group (@package)"),
])
def test_a_saved_group_value_never_names_a_file(saved, why):
    with pytest.raises(UsageError, match="refused .*" + why.replace("(", r"\(").replace(")", r"\)")):
        trust.check_overrides([saved], "resume=x: .hydra/overrides.yaml")


def test_saved_group_values_name_options_of_the_search_path(tmp_path):
    assert trust.check_overrides(["norm=gn", "experiment=init", "experiment=null"], "s") == [
        "norm=gn", "experiment=init", "experiment=null"]
    assert trust.check_overrides(["norm=bn,gn,ln"], "s", sweep=True) == ["norm=bn,gn,ln"]
    with pytest.raises(UsageError, match="mine is not an option of experiment"):
        trust.check_overrides(["experiment=mine"], "s")
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text("# @package _global_\nlr: 0.1\n")
    dirs = trust.config_dirs(["-m", "--config-dir", str(tmp_path), "seed=1"])
    assert dirs == [tmp_path] and trust.config_dirs([f"-cd={tmp_path}"]) == [tmp_path]
    assert trust.check_overrides(["experiment=mine"], "s", config_dirs=dirs) == ["experiment=mine"]


def test_a_directory_with_a_symlink_fifo_or_device_is_not_written_to(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "summary.json").write_text("{}")
    files.refuse_links(run, "run directory")  # plain files: fine
    (run / ".hydra" / "config.yaml").symlink_to(tmp_path / "victim")
    with pytest.raises(UsageError, match=r"run/.hydra/config.yaml: a symlink \(to .*victim\) inside a run directory"):
        files.refuse_links(run, "run directory")
    (run / ".hydra" / "config.yaml").unlink()
    os.mkfifo(run / "train.log")
    with pytest.raises(UsageError, match="train.log: a FIFO inside a run directory"):
        files.refuse_links(run, "run directory")


def test_appending_never_follows_a_symlink(tmp_path):
    (tmp_path / "metrics.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(OSError) as e:
        files.open_append(tmp_path / "metrics.csv")
    assert e.value.errno == errno.ELOOP and not (tmp_path / "elsewhere.csv").exists()


def test_what_hydra_rewrites_is_put_back_as_it_was(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    for name in files.HYDRA_FILES:
        (run / name).write_text(f"{name}: before\n")
    (run / "train.log").write_text("first session\n")
    kept = files.Kept(run)
    for name in files.HYDRA_FILES:
        (run / name).write_text("rewritten by a refused resume\n")
    with open(run / "train.log", "a") as f:
        f.write("a line of the refused resume\n")
    (run / ".lock").touch()
    kept.put_back()
    assert [(run / n).read_text() for n in files.HYDRA_FILES] == [f"{n}: before\n" for n in files.HYDRA_FILES]
    assert (run / "train.log").read_text() == "first session\n" and not (run / ".lock").exists()


def test_a_full_or_read_only_disk_is_named_in_one_line(tmp_path):
    e = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "checkpoint.pt"))
    text = disk_problem(e)
    assert text.startswith("no space left on ") and text.endswith(f"writing {tmp_path / 'checkpoint.pt'}")
    assert "(/" in text  # the mount point of the device
    assert disk_problem(OSError(errno.EROFS, "x", "f")).startswith("read-only file system ")
    assert disk_problem(OSError(errno.ENOENT, "x", "f")) is None
    with pytest.raises(OSError) as raised:
        with files.writing(tmp_path / "metrics.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a failed flush names no file
    assert raised.value.filename == str(tmp_path / "metrics.csv")


def test_a_disk_without_space_is_refused_before_anything_is_made(tmp_path, monkeypatch):
    real = os.statvfs

    class Full:
        def __init__(self, fs):
            self.f_flag, self.f_frsize, self.f_blocks, self.f_bavail = fs.f_flag, fs.f_frsize, fs.f_blocks, 0

    monkeypatch.setattr(os, "statvfs", lambda p: Full(real(p)))
    with pytest.raises(UsageError, match=r"hydra.run.dir=.*new/run: no space left on .* \(0 bytes free\)"):
        from normbench.rundir import usable_dir
        usable_dir("hydra.run.dir", tmp_path / "new" / "run")
    assert not (tmp_path / "new").exists()


def test_a_log_is_cut_after_a_step_in_place(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_bytes(b"step,epoch,tag,value,wall_time\r\n10,1,a,1.0,0\r\n44,2,a,2.0,0\r\n50,3,a,3.0,0\r\n60,3,a,4")
    cut_after(path, 44)
    assert path.read_bytes() == b"step,epoch,tag,value,wall_time\r\n10,1,a,1.0,0\r\n44,2,a,2.0,0\r\n"


class _Broken(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_broken_or_narrow_terminal_is_silenced_never_raised(tmp_path):
    reader, writer = os.pipe()
    spare = os.dup(writer)  # the View silences the descriptor it is given: a copy, not this test's stdout
    try:
        view = streams.View(_Broken(), spare)
        assert view.write("epoch 1/3\n") == len("epoch 1/3\n") and view.broken
        view.write("more")  # dropped, no error
        view.flush()
        assert not view.isatty()
        ascii_out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
        narrow = streams.View(ascii_out, spare)
        narrow.write("0.9759 ± 0.0089 Δ\n")
        narrow.flush()
        assert ascii_out.buffer.getvalue() == b"0.9759 \\xb1 0.0089 \\u0394\n"
    finally:
        for fd in (reader, writer, spare):
            os.close(fd)


def test_a_traceback_never_reaches_the_console_handler():
    import logging

    one_line = streams.OneLineRecords()
    record = logging.LogRecord("normbench", logging.ERROR, "f", 1, "run failed at step 3:\n%s", ("Traceback...",), None)
    assert not one_line.filter(record)
    assert one_line.filter(logging.LogRecord("normbench", logging.WARNING, "f", 1, "no checkpoint", (), None))


def _checkpoint(tmp_path, **fields):
    state = {"model": {}, "optimizer": {}, "step": 44, "epoch": 2, "position": 0, "perm": None, "rng": {},
             "config": {"epochs": 2}}
    state.update(fields)
    torch.save(state, tmp_path / "c.pt")
    return tmp_path / "c.pt"


@pytest.mark.parametrize("fields, why", [
    ({"step": -5}, "step=-5 is not a count"),
    ({"step": "abc"}, "step=abc is not a count"),
    ({"epoch": 1.5}, "epoch=1.5 is not a count"),
    ({"epoch": True}, "epoch=True is not a count"),
    ({"epoch": 7}, "epoch=7 is more than the run's epochs=2"),
    ({"step": 1, "epoch": 2}, "epoch=2 is more than its step=1"),
    ({"model": [1, 2]}, r"model=\[1, 2\] is not a mapping"),
    ({"perm": torch.zeros(3)}, "perm=.* is not a permutation"),
    ({"position": 9, "perm": torch.arange(3)}, "perm=.* is not a permutation"),
])
def test_a_checkpoint_with_impossible_fields_is_refused(tmp_path, fields, why):
    with pytest.raises(UsageError, match="c.pt: refused: " + why):
        load_checkpoint(_checkpoint(tmp_path, **fields))
    assert load_checkpoint(_checkpoint(tmp_path))["step"] == 44


def test_a_checkpoint_that_is_a_fifo_is_refused_not_waited_for(tmp_path):
    fifo(tmp_path / "c.pt")
    with pytest.raises(UsageError, match="c.pt: refused: c.pt is a FIFO, not a regular file"):
        load_checkpoint(tmp_path / "c.pt")
