"""Refuse bad input before Hydra writes anything, and hold the run directory.

Hydra calls ``on_run_start`` with the composed config before it creates a single run's
directory, so a refused value leaves no directory behind (the command line says it in
one line, exit status 2). Here the run's config is checked, its directory must be one it
can write to and may not hold another run's results (unless ``resume=`` continues that
run), and the directory is locked for the life of the process: a second normbench
writing into it is refused. (Checks that need the loaded data run in the run itself.)
The directory may hold no symlink where normbench or Hydra would write (``files.py``), and
a resumed run's ``.hydra/`` and log are kept, to be put back if the resume is refused.
"""

from __future__ import annotations

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from . import files
from .errors import Ended, UsageError, first_line
from .files import shown
from .rundir import DirectoryLock, holds_a_run, usable_dir
from .validate import check_config, check_keys


class Preflight(Callback):
    def __init__(self) -> None:
        self.lock: DirectoryLock | None = None

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        try:
            self._check(config)
        except UsageError as e:  # Hydra would turn an Exception raised here into a warning
            raise Ended(e) from None
        except OmegaConfBaseException as e:  # a value the checks could not read: bad input too
            raise Ended(UsageError(first_line(e))) from None
        except Exception as e:  # not a warning and on with the run: the command line says it in one line
            raise Ended(e) from None

    def _check(self, config: DictConfig) -> None:
        check_keys(config)
        check_config(config)
        run_dir, existed = usable_dir("hydra.run.dir", config.hydra.run.dir)
        files.refuse_links(run_dir, "run directory")  # before the lock, .hydra/ and the log are written
        if config.resume:  # what Hydra (and the lock) are about to write, put back if the resume is refused
            files.keep(run_dir)
        self.lock = DirectoryLock(run_dir, "run directory")  # first: a run writing there now is the reason
        if existed and holds_a_run(run_dir) and not config.resume:
            self.lock.discard()
            raise UsageError(f"hydra.run.dir={shown(run_dir)} holds a run already (summary.json, metrics.csv or "
                             f"checkpoint.pt); allowed: a new directory, or resume={shown(run_dir)} to continue it")

    def on_run_end(self, config: DictConfig, **kwargs) -> None:
        if self.lock is not None:
            self.lock.release()

