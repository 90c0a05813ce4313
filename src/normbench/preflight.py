"""Refuse bad input before Hydra writes anything.

Hydra calls ``on_run_start`` with the composed config before it creates the run
directory, so a refused value leaves no directory behind: the user sees one line and
exit status 2. (Checks that need the loaded data run in the task itself.)
"""

from __future__ import annotations

import sys

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from .errors import UsageError
from .validate import check_config


class Preflight(Callback):
    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        try:
            check_config(config)
        except UsageError as e:
            print(f"normbench: error: {e}", file=sys.stderr)
            sys.exit(e.exit_code)
