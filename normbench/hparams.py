"""What TensorBoard's HParams tab shows, written with TensorBoard's own hparams API
(``tensorboard.plugins.hparams.summary_v2`` and ``summary``, the functions ``api``
re-exports; ``api`` itself imports TensorFlow):

- each run: its session (the flattened config, ``norm.name``, ``model.depth``, ..., and
  its ``status``), in its own event file, named by the run (``trial_id``: the last three
  parts of its directory, ``2026-12-04/22-40-31-575467/norm=bn,seed=0``, unique across
  sweeps; TensorBoard would otherwise name it by a hash of its values);
- each sweep: one experiment config, in the sweep directory's own event file, listing
  the keys that vary across the sweep, each with ``differs`` set, then ``status``, and
  the metrics. ``tensorboard --logdir <sweep>`` opens the tab on it; a single run's table
  is computed from its session alone.

What the tab shows first is decided by TensorBoard (2.21): the hyperparameters sorted by
their ``differs`` flag, then by name, and the first five of them and of the metrics
ticked. So the experiment lists only what varies (and ``status``): settings every job
shares, and a norm's own keys that change only with the norm (``norm.momentum``, which
only ``bn`` has), would take those five places. Its frontend writes every number with
five significant digits (``64.000``): integers stay numbers, so that they sort and filter
as numbers.

Settings a run's norm ignores read ``n/a`` (``identity.canonical``); null values and the
settings that only say how a run was managed (``rundir.RUN_MANAGEMENT``) are left out.
Nothing here imports torch, so the sweep process writes its experiment config without it.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from .identity import canonical
from .rundir import FINISHED, STATUSES, flat, is_management

# what the HParams tab shows beside each run's settings: the last value of these tags
METRICS = ["val/acc", "val/loss", "train/loss", "val/train_eval_gap", "summary/best_val_acc",
           "summary/steps_to_target", "summary/precise_bn_gain"]


def values(config: dict) -> dict:
    """A resolved config as HParams values: flattened keys, bools, ints, floats and
    strings kept as they are, lists as their text (``[32, 64]``), nulls left out."""
    out = {}
    for key, value in flat(canonical(config)).items():
        if value is None or is_management(key):
            continue
        out[key] = str(list(value)) if isinstance(value, (list, tuple)) else value
    return out


def trial_id(run_dir) -> str:
    """The name of a run's row in the HParams tab: the last three parts of its directory
    (``2026-12-04/22-40-31-575467/norm=bn,seed=0``), unique across sweeps."""
    return "/".join(Path(run_dir).resolve().parts[-3:])


def session(config: dict, started_at: str | None, status: str, run_dir) -> list:
    """A run's session start (its settings and ``status``) and end, as Summary protos."""
    ended = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.STATUS_SUCCESS if status in FINISHED else api_pb2.STATUS_FAILURE,
        end_time_secs=time.time())
    end = _plugin_summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=ended))
    return [hp.hparams_pb({**values(config), "status": status}, trial_id=trial_id(run_dir),
                          start_time_secs=_seconds(started_at)), end]


def _plugin_summary(tag: str, data):
    """A Summary proto of the hparams plugin's ``data`` (HParamsPluginData) under ``tag``,
    as ``summary_v2`` writes its own (its ``hparams_config_pb`` has no ``differs``)."""
    return Summary(value=[Summary.Value(tag=tag, tensor=metadata.NULL_TENSOR,
                                        metadata=metadata.create_summary_metadata(data))])


def _seconds(iso: str | None) -> float:
    try:
        return dt.datetime.fromisoformat(iso).timestamp() if iso else time.time()
    except ValueError:
        return time.time()


def _domain(seen: list):
    """A discrete domain for strings, integers and booleans; a real interval for floats;
    none for a key whose values are of several kinds (``n/a`` and numbers): TensorBoard
    filters a discrete domain by type as well as value, and would hide the runs whose
    values are of another kind than the domain's."""
    kinds = {type(v) for v in seen}
    if kinds <= {int, float} and float in kinds:
        return hp.RealInterval(float(min(seen)), float(max(seen))) if min(seen) < max(seen) else \
            hp.Discrete(sorted({float(v) for v in seen}))
    if len(kinds) == 1 and kinds <= {int, bool, str}:
        return hp.Discrete(sorted(set(seen)))
    return None


def varying(rows: list[dict]) -> list[str]:
    """The keys of ``rows`` (each job's ``values``) that differ between the jobs (a key
    some jobs lack differs), but a group's own keys that change only with its option
    (``norm.momentum``, which only ``norm=bn`` has): those say nothing the option does not."""
    keys = list(dict.fromkeys(k for row in rows for k in row))

    def text(row: dict, key: str) -> str:
        return repr(row.get(key, "<absent>"))

    differ = [k for k in keys if len({text(r, k) for r in rows}) > 1]

    def own(key: str) -> bool:
        option = key.rpartition(".")[0] + ".name"
        if option == ".name" or option == key or option not in differ:
            return False
        values_by_option: dict[str, set] = {}
        for r in rows:
            values_by_option.setdefault(text(r, option), set()).add(text(r, key))
        return all(len(v) == 1 for v in values_by_option.values())

    return [k for k in differ if not own(k)]


def experiment(configs: list[dict], varying_first: list[str]):
    """The experiment config of a sweep whose jobs have ``configs``, as a Summary proto:
    the keys that vary (``varying_first``, the sweep's own, in its order, then any other
    that does), each with its domain and ``differs`` set, then ``status``; the metrics."""
    rows = [values(c) for c in configs]
    differ = varying(rows)
    order = [k for k in varying_first if k in differ] + [k for k in differ if k not in varying_first]
    infos = []
    for key in order:
        info = api_pb2.HParamInfo(name=key, differs=True)
        domain = _domain([r[key] for r in rows if key in r])
        if domain is not None:
            domain.update_hparam_info(info)
        infos.append(info)
    status = api_pb2.HParamInfo(name="status")
    hp.Discrete(list(STATUSES)).update_hparam_info(status)
    config = api_pb2.Experiment(time_created_secs=time.time(), hparam_infos=[*infos, status],
                                metric_infos=[hp.Metric(tag).as_proto() for tag in METRICS])
    return _plugin_summary(metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=config))


def write_experiment(sweep_dir: Path, configs: list[dict], varying_first: list[str]) -> None:
    """The sweep's experiment config in an event file of the sweep directory."""
    writer = EventFileWriter(str(sweep_dir))
    try:
        writer.add_event(Event(wall_time=time.time(), step=0, summary=experiment(configs, varying_first)))
        writer.flush()
    finally:
        writer.close()
