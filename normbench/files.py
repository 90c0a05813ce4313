"""The files of a run, sweep or report directory, which is data and may lie: someone may
hand over a directory whose files are FIFOs, devices, symlinks to elsewhere, gigabytes of
zeros or YAML that expands to gigabytes.

- Reads are typed and bounded (``open_regular``): a regular file only, opened without
  blocking (``O_NONBLOCK``: a FIFO never hangs) and without following a symlink that leads
  out of its directory, and refused above a stated size (``MAX_*``; metrics.csv's is
  sized for a long ResNet-110 run, see the README's Trust section).
- YAML (``load_yaml``) is read within its bound and may hold no anchors or aliases (a few
  hundred bytes of them expand to gigabytes).
- Writes never follow a symlink inside a run, sweep or report directory: ``refuse_links``
  before anything is written (Hydra's ``.hydra/`` and log included), ``open_append`` with
  ``O_NOFOLLOW`` where normbench opens a file itself, and atomic writes replace a path
  rather than writing through it (``atomic_write``). A symlinked ``outputs/`` or data root above them is
  normal and keeps working: only the last component is never followed.
- ``Kept``: what Hydra rewrites when a run is resumed, as it was, put back when the resume
  is refused (or an extension of a finished run rolled back), so a refused command leaves
  the directory as it found it.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import yaml

from .errors import UsageError, device_of

MAX_YAML_BYTES = 4 * 2**20  # .hydra/overrides.yaml, multirun.yaml: a few kB when normbench wrote them
# metrics.csv, histograms.csv: a ResNet-110 with ~220 parameterised layers (convolutions and
# norms), a grad_norm row per layer every log_every=10 steps over 64k steps is 1.4M rows of
# ~80 bytes, ~115 MB: this bound is about 9 times that
MAX_CSV_BYTES = 2**30
MAX_CHECKPOINT_BYTES = 4 * 2**30  # a VGG-16's weights with Adam's two moments are ~0.2 GB
HYDRA = ".hydra"
HYDRA_FILES = (f"{HYDRA}/config.yaml", f"{HYDRA}/hydra.yaml", f"{HYDRA}/overrides.yaml")
LOG = "train.log"  # the run's log (Hydra's job logging)
LOCK = ".lock"  # held (flock) by the one process writing the directory
FOLDERS = (HYDRA, ".gpu-slots")  # the folders inside a run or sweep directory that normbench or Hydra writes into


class BadFile(Exception):
    """A file that is not one normbench reads: not a regular file, a symlink out of its
    directory, too large, or YAML with anchors. The message says which, in a few words."""


def _size(n: int) -> str:
    return f"{n / 2**30:g} GB" if n >= 2**30 else f"{n / 2**20:g} MB"


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"))


def open_regular(path: Path, limit: int, within: Path | None = None) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file of at most ``limit``
    bytes; a symlink is followed only to a file inside ``within`` (never when ``within`` is
    None). Raises BadFile saying why not, or OSError (FileNotFoundError, ...)."""
    path = Path(path)
    if within is not None and path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(Path(within).resolve()):
            raise BadFile(f"{path.name} is a symlink leading outside its directory")
        path = target
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise BadFile(f"{path.name} is a symlink") from None
        raise
    mode, size = (st := os.fstat(fd)).st_mode, st.st_size
    kind = next((name for test, name in _KINDS if test(mode)), None if stat.S_ISREG(mode) else "not a file")
    if kind is not None or size > limit:
        os.close(fd)
        raise BadFile(f"{path.name} is {kind}, not a regular file" if kind is not None else
                      f"{path.name} is larger than {_size(limit)}")
    return os.fdopen(fd, "rb")


def read_bytes(path: Path, limit: int, within: Path | None = None) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``open_regular``)."""
    with open_regular(path, limit, within) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise BadFile(f"{Path(path).name} is larger than {_size(limit)}")
    return data


def load_yaml(path: Path, limit: int = MAX_YAML_BYTES, within: Path | None = None) -> Any:
    """A YAML file of a run or sweep directory, parsed with PyYAML's safe loader after
    checking (``yaml.parse``, its public event stream) that it holds no anchor or alias.
    Raises BadFile, OSError, UnicodeDecodeError, yaml.YAMLError or RecursionError."""
    text = read_bytes(path, limit, within).decode("utf-8")
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise BadFile(f"{Path(path).name} holds YAML anchors or aliases (& or *), which normbench does not "
                          f"expand (a few hundred bytes of them can expand to gigabytes)")
    return yaml.safe_load(text)


def unsafe_entries(directory: Path) -> list[tuple[Path, str]]:
    """The entries of ``directory``, and of the folders inside it that normbench or Hydra
    write into (``.hydra/``, ``.gpu-slots/``), that are neither a regular file nor a
    directory (a symlink, a FIFO, a device, a socket), each with what it is."""
    found = []
    for folder in (Path(directory), *(Path(directory, name) for name in FOLDERS)):
        try:
            with os.scandir(folder) as entries:
                for e in entries:
                    if e.is_symlink():
                        found.append((Path(e.path), f"a symlink (to {os.readlink(e.path)})"))
                    elif not (e.is_file(follow_symlinks=False) or e.is_dir(follow_symlinks=False)):
                        mode = e.stat(follow_symlinks=False).st_mode
                        found.append((Path(e.path), next((n for test, n in _KINDS if test(mode)), "not a file")))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return sorted(found)


def refuse_links(directory: Path, what: str) -> None:
    """Refuse (UsageError, one line) to write into ``directory`` (a ``what``: run, sweep or
    report directory) while it holds a symlink, a FIFO or a device where normbench or
    Hydra would write: a write would land elsewhere, or block."""
    found = unsafe_entries(directory)
    if found:
        path, kind = found[0]  # shown as the entry, not where it leads
        raise UsageError(f"{Path(shown(path.parent), path.name)}: {kind} inside a {what}; allowed: plain files there (normbench never "
                         f"writes through a symlink, or into a FIFO or device, inside a {what}: remove it)")


def check_space(directory: Path, what: str, need: int = 2**20) -> None:
    """Refuse to write into ``directory`` (``what``: how the user named it) on a read-only
    file system or one with less than ``need`` bytes free (a run's first files would not
    fit); asked of its nearest existing folder, before anything is made."""
    where = Path(directory).absolute()
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        fs = os.statvfs(where)
    except OSError:
        return
    if fs.f_flag & os.ST_RDONLY:
        raise UsageError(f"{what}: read-only file system {device_of(str(where))}; allowed: a directory you can "
                         f"write to")
    if fs.f_blocks and fs.f_bavail * fs.f_frsize < need:  # (no blocks at all: /proc and the like, not a disk)
        raise UsageError(f"{what}: no space left on {device_of(str(where))} ({fs.f_bavail * fs.f_frsize} bytes "
                         f"free); allowed: a directory on a disk with space")


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """An OSError raised inside names ``path`` (a failed write or flush names no file of
    its own), so that a full disk is said as ``no space left on <device> writing <path>``."""
    try:
        yield
    except OSError as e:
        if not e.filename:
            e.filename = str(path)
        raise


def open_append(path: Path, truncate: bool = False):
    """A text file for appending (or rewriting, ``truncate``), never through a symlink
    (O_NOFOLLOW): refused with OSError(ELOOP) if ``path`` is one."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_TRUNC if truncate else os.O_APPEND)
    with writing(path):
        fd = os.open(path, flags, 0o666)
    return open(fd, "w", newline="")


def shown(path: Path, base: Path | None = None) -> str:
    """A path as the user would type it: relative to ``base`` (the working directory) when
    inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path(base or Path.cwd()).resolve()))
    except ValueError:
        return str(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, flushed to disk and
    renamed over it (which replaces a symlink at ``path`` rather than writing through it).
    An OSError names ``path`` (a full disk: ``no space left on <device> writing <path>``)."""
    with writing(path):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the mode any new file gets
            with os.fdopen(fd, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class Kept:
    """A resumed run's ``.hydra/`` files and log as they were before Hydra rewrote them.
    ``put_back`` restores them: a refused resume (or an extension rolled back) leaves the
    directory as it found it, and its saved overrides still say what the run was."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.log, self.lock = Path(run_dir), Path(run_dir) / LOG, Path(run_dir) / LOCK
        self.files = {name: self._read(Path(run_dir) / name) for name in HYDRA_FILES}
        self.log_size = self.log.stat().st_size if self.log.is_file() else None
        self.had_lock = self.lock.exists()

    @staticmethod
    def _read(path: Path) -> bytes | None:
        try:
            return read_bytes(path, MAX_YAML_BYTES)
        except (OSError, BadFile):
            return None

    def put_back(self, log: bool = True) -> None:
        """Restore the files kept, and the log too unless ``log`` is False (an extension rolled
        back keeps its attempt's lines there)."""
        for name, data in self.files.items():
            path = self.run_dir / name
            if data is None:
                path.unlink(missing_ok=True)
            elif self._read(path) != data:
                atomic_write(path, lambda f, data=data: f.write(data))
        if not self.had_lock:
            self.lock.unlink(missing_ok=True)
        if not log:
            return
        if self.log_size is None:
            self.log.unlink(missing_ok=True)
        elif self.log.is_file() and not self.log.is_symlink() and self.log.stat().st_size > self.log_size:
            os.truncate(self.log, self.log_size)


_kept: dict[Path, Kept] = {}  # run directory -> what preflight kept of it before Hydra wrote there


def keep(run_dir: Path) -> None:
    """Keep a resumed run's files before Hydra rewrites them (preflight does, in the one
    process that runs a single run)."""
    _kept[Path(run_dir).resolve()] = Kept(run_dir)


def put_back(run_dir: Path, log: bool = True) -> None:
    """Restore what ``keep`` kept of ``run_dir``, if anything (``Kept.put_back``)."""
    kept = _kept.pop(Path(run_dir).resolve(), None)
    if kept is not None:
        kept.put_back(log)
