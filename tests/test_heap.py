"""The cycle collector around runs (normbench/heap.py): the first run of a process leaves
what its imports made out of the collector's walks, and gives it back when it ends; a
later run in the same process (a sweep's worker, job after job) freezes nothing, so the
cycles the run before left, its model among them, are collected while it trains."""

import gc
import weakref

from normbench import heap, run


def test_only_the_first_run_of_a_process_freezes_and_the_run_before_is_collected_during_the_next(
        monkeypatch, in_process):
    monkeypatch.setattr(heap, "_first_run", True)  # as in a fresh process (a worker's first job)
    models, frozen = [], []
    build = run.build_model

    def build_in_a_cycle(*args, **kwargs):
        model = build(*args, **kwargs)
        model.cycle = [model]  # freed only by the cycle collector once the run is over
        gc.collect()  # what a collection during this run reaches
        frozen.append(gc.get_freeze_count())
        models.append(weakref.ref(model))
        return model

    monkeypatch.setattr(run, "build_model", build_in_a_cycle)
    for _ in range(2):
        assert in_process("train", "epochs=1", "progress=false", "probe_every=0").returncode == 0
        assert gc.get_freeze_count() == 0  # given back when the run ended
    first, second = models
    assert frozen[0] > 10_000  # torch, Hydra, TensorBoard: out of the walks during the first run
    assert frozen[1] == 0
    assert first() is None  # collected while the second run trained, not held until it ended
    gc.collect()
    assert second() is None
