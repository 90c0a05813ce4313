"""normbench's sweeper where Hydra looks for it (Hydra instantiates plugins only from the
``hydra_plugins`` package). Hydra imports this module whenever it starts, a single run
included, so it imports nothing of normbench: the sweep itself (``normbench.sweep``) is
imported only when a sweep starts."""

from __future__ import annotations

from typing import Any, List, Optional

from hydra.plugins.sweeper import Sweeper


class NormbenchSweeper(Sweeper):
    """``hydra/sweeper=normbench`` (conf/hydra/sweeper/normbench.yaml): a grid like Hydra's
    basic sweeper's (``hydra.sweeper.params``, ``max_batch_size``), run by
    ``normbench.sweep.sweeper.Sweep``."""

    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[dict] = None) -> None:
        self.max_batch_size, self.params = max_batch_size, params
        self._sweep = None

    def setup(self, *, hydra_context, task_function, config) -> None:
        from normbench.sweep.sweeper import Sweep  # the sweep: only when one starts (every run registers this plugin)

        self.hydra_context, self.config = hydra_context, config
        self._sweep = Sweep(hydra_context, task_function, config, self.max_batch_size, self.params)
        self.launcher = self._sweep.launcher

    def sweep(self, arguments: List[str]) -> Any:
        return self._sweep.run(arguments)
