"""What TensorBoard shows of a sweep, read from TensorBoard itself: a real ``tensorboard``
on a real sweep, asked through the HTTP endpoints its own pages call."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import HERE, run_in_process

FIRST = 5  # TensorBoard's HParams page ticks the first five hyperparameters and the first five metrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(port: int, route: str, body: dict | None = None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/data/plugin/{route}", data=data,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def tensorboard_on(logdir: Path, tmp_path: Path):
    """A tensorboard serving ``logdir`` on a free port, its log in tmp_path."""
    port = free_port()
    log = open(tmp_path / "tensorboard.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("tensorboard")), "--logdir", str(logdir),
                             "--port", str(port), "--host", "127.0.0.1", "--reload_interval", "1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, port, log


def wait_for(port: int, proc, ready, timeout: float = 90):
    """What ``ready()`` returns once it returns something, asking TensorBoard until then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "tensorboard exited"
        try:
            found = ready()
            if found:
                return found
        except (OSError, ValueError):
            pass
        time.sleep(1)
    raise AssertionError(f"tensorboard had nothing to show after {timeout} s")


@pytest.mark.slow
def test_the_hparams_tab_opens_on_what_varies_and_custom_scalars_on_the_results(workdir, tmp_path):
    # base_batch_size is n/a with lr_scaling=none and 64 with linear: values of two kinds. 44 steps
    # an epoch, probes at steps 0, 60 and 88: the update ratios (from the second probe on) come after
    # the first epoch's layout, so TensorBoard must show the layout written last
    proc = run_in_process("train", "-m", "norm=bn,none", "placement=pre,post", "lr_scaling=none,linear",
                          "batch_size=32", "epochs=2", "probe_every=60", "progress=false", "checkpoint=false",
                          *HERE, cwd=workdir)  # the jobs one after another in this process
    assert proc.returncode == 0, proc.stderr
    (sweep,) = [p.parent for p in (workdir / "outputs").rglob("multirun.yaml")]
    jobs = sorted(p.parent.name for p in sweep.glob("*/summary.json"))
    assert len(jobs) == 6  # norm=none: placement=post is a duplicate, not trained
    server, port, log = tensorboard_on(sweep, tmp_path)
    try:
        experiment = wait_for(port, server, lambda: ask(port, "hparams/experiment", {
            "experimentName": "", "hparamsLimit": 1000}).get("hparamInfos"))
        metrics = ask(port, "hparams/experiment", {"experimentName": ""})["metricInfos"]
        names = [h["name"] for h in experiment]
        groups = wait_for(port, server, lambda: (lambda g: g if len(g) == len(jobs) else None)(
            ask(port, "hparams/session_groups", {
                "experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                                          "STATUS_RUNNING"],
                "colParams": [{"hparam": n, "includeInResult": True} for n in names], "startIndex": 0,
                "sliceSize": 100}).get("sessionGroups", [])))
        layout = wait_for(port, server, lambda: ask(port, "custom_scalars/layout").get("category"))
        tags = wait_for(port, server, lambda: ask(port, "scalars/tags"))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    # the columns and axes it opens on: the keys that vary, differs set, then status; then the results
    varying = {"norm.name", "placement", "lr_scaling", "base_batch_size"}
    assert set(names[:len(varying)]) == varying and all(h["differs"] for h in experiment[:len(varying)])
    assert names[len(varying):] == ["status"] and len(names) == FIRST  # nothing every job shares takes a place
    shown = {h["name"]: h for h in experiment}
    assert shown["norm.name"]["domainDiscrete"] == ["bn", "none"]
    assert shown["placement"]["domainDiscrete"] == ["n/a", "post", "pre"]
    assert "domainDiscrete" not in shown["base_batch_size"]  # n/a and 64: a domain would hide one kind
    assert [m["name"]["tag"] for m in metrics][:FIRST] == ["val/acc", "val/loss", "train/loss", "val/train_eval_gap",
                                                          "summary/best_val_acc"]
    # every run is a row, named by its directory under its sweep's
    rows = {g["name"]: g["hparams"] for g in groups}
    assert sorted(rows) == sorted(f"{sweep.parent.name}/{sweep.name}/{job}" for job in jobs)
    one = rows[f"{sweep.parent.name}/{sweep.name}/norm=bn,placement=pre,lr_scaling=linear"]
    assert (one["norm.name"], one["placement"], one["base_batch_size"], one["status"]) == ("bn", "pre", 64,
                                                                                             "completed")
    # Custom Scalars: the results first and open, the rest closed, and no chart of a tag no run recorded
    assert layout[0]["title"] == "results (a line per run)" and not layout[0].get("closed")
    assert [c["title"] for c in layout[0]["chart"]][:2] == ["validation accuracy (eval mode)",
                                                            "validation accuracy, BatchNorm in train mode"]
    assert all(c.get("closed") for c in layout[1:]) and len(layout) > 5
    recorded = {t for run in tags.values() for t in run}
    for category in layout:
        for chart in category["chart"]:
            (pattern,) = chart["multiline"]["tag"]
            assert any(re.fullmatch(pattern, t) for t in recorded), (category["title"], pattern)
    titles = [c["title"] for c in layout]
    assert "BatchNorm variance shift (running / eval-mode input variance)" in titles
    assert "update / weight of each layer" in titles  # from the layout written last
