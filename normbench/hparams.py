"""What TensorBoard's HParams tab shows, written with TensorBoard's own hparams API
(``tensorboard.plugins.hparams.summary_v2``, the functions ``api`` re-exports; ``api``
itself imports TensorFlow):

- each run: its session (the flattened config, ``norm.name``, ``model.depth``, ..., and
  its ``status``), in its own event file;
- each sweep: one experiment config, in the sweep directory's own event file, listing
  the keys that vary across the sweep first (then those every job shares), every key
  any job has (``norm.groups`` though only ``gn`` has it), discrete domains for the
  string, integer and boolean ones, and the metrics. ``tensorboard --logdir <sweep>``
  opens the tab on it; a single run's table is computed from its session alone.

Settings a run's norm ignores read ``n/a`` (``identity.canonical``); null values and the
settings that only say how a run was managed (``rundir.RUN_MANAGEMENT``) are left out.
Nothing here imports torch, so the sweep process writes its experiment config without it.
"""

from __future__ import annotations

import time
from pathlib import Path

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


def session(config: dict, started_at: str | None, status: str) -> list:
    """A run's session start (its settings and ``status``) and end, as Summary protos."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp

    ended = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.STATUS_SUCCESS if status in FINISHED else api_pb2.STATUS_FAILURE,
        end_time_secs=time.time())
    end = Summary(value=[Summary.Value(tag=metadata.SESSION_END_INFO_TAG, tensor=metadata.NULL_TENSOR,
                                       metadata=metadata.create_summary_metadata(
                                           plugin_data_pb2.HParamsPluginData(session_end_info=ended)))])
    return [hp.hparams_pb({**values(config), "status": status}, start_time_secs=_seconds(started_at)), end]


def _seconds(iso: str | None) -> float:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(iso).timestamp() if iso else time.time()
    except ValueError:
        return time.time()


def _domain(seen: list):
    """A discrete domain for strings, ints and bools; a real interval for floats."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    kinds = {type(v) for v in seen}
    if kinds <= {int, float} and float in kinds:
        return hp.RealInterval(float(min(seen)), float(max(seen))) if min(seen) < max(seen) else \
            hp.Discrete(sorted({float(v) for v in seen}))
    if len(kinds) == 1 and kinds <= {int, bool, str}:
        return hp.Discrete(sorted(set(seen)))
    return hp.Discrete(sorted({str(v) for v in seen}))


def experiment(configs: list[dict], varying_first: list[str]):
    """The experiment config of a sweep whose jobs have ``configs``, as a Summary proto:
    the keys that vary first (``varying_first`` in its order, then any other that does),
    then the rest, each with its domain."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    rows = [values(c) for c in configs]
    keys: dict[str, list] = {}
    for row in rows:
        for k, v in row.items():
            keys.setdefault(k, []).append(v)
    varies = {k for k, seen in keys.items() if len({repr(v) for v in seen}) > 1 or len(seen) < len(rows)}
    order = [k for k in varying_first if k in varies]
    order += [k for k in keys if k in varies and k not in order] + [k for k in keys if k not in varies]
    hparams = [hp.HParam(k, _domain(keys[k])) for k in order]
    hparams.append(hp.HParam("status", hp.Discrete(list(STATUSES))))
    return hp.hparams_config_pb(hparams=hparams, metrics=[hp.Metric(tag) for tag in METRICS])


def write_experiment(sweep_dir: Path, configs: list[dict], varying_first: list[str]) -> None:
    """The sweep's experiment config in an event file of the sweep directory."""
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(sweep_dir))
    try:
        writer.add_event(Event(wall_time=time.time(), step=0, summary=experiment(configs, varying_first)))
        writer.flush()
    finally:
        writer.close()
