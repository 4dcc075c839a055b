"""Cache entries several processes share: built once, published whole.

An entry is a file or a folder under a cache folder (a feature network and
the real-data scores in eval.cache_dir, a TFDS dataset's prepared version
folder). Processes started together (a parallel sweep, runs launched at
once) meet the same missing entry; `read_or_build` makes them agree:
- a reader takes an entry it cannot read (missing, interrupted, damaged)
  as missing: it is built again, never crashed on;
- a builder holds the entry's lock, `.<name>.lock` beside it (flock,
  exclusive, blocking): one process builds while the others wait (and say
  whose build they wait for), then read again and find the entry built;
- a builder builds in a private folder beside the entry (`publishing`)
  and publishes it with one rename, so a reader sees all of an entry or
  none of it (a file entry: an atomic file write, rundir.write_json; TFDS
  renames its own temporary folder). A killed builder may leave its
  private `.<name>.*.tmp` folder behind, which nothing reads.
The lock files stay (removing one while another process waits on it would
let a third build beside the second). The kernel drops a flock when its
process ends, however it ends, so a killed builder blocks nobody. Where
flock does not lock across hosts (some network filesystems), processes on
two hosts may each build an entry; each publishes it whole, so a reader
still never sees half of one. No JAX.
"""

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import tempfile

_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


def lock_path(path: str) -> str:
  """The lock file of the entry at `path`: `.<name>.lock` beside it."""
  parent, name = os.path.split(os.path.abspath(path))
  return os.path.join(parent, f'.{name}.lock')


def _flock(fd: int, flags: int) -> None:
  """flock(fd, flags); a filesystem without locks locks nothing."""
  try:
    fcntl.flock(fd, flags)
  except OSError as e:
    if e.errno not in _NO_LOCKS:
      raise


@contextlib.contextmanager
def lock(path: str, what: str, say=print):
  """Holds the exclusive build lock of the entry at `path` (creating its
  folder); waits for another holder, after `say`ing 'waiting for process
  P on HOST building <what> ...'. Not reentrant: a process that holds an
  entry's lock must not take it again."""
  os.makedirs(os.path.dirname(lock_path(path)), exist_ok=True)
  fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
  try:
    try:
      _flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(fd, 200, 0).decode(errors='replace').strip()
      say(f'waiting for {holder or "another process"} building {what} ...')
      _flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.pwrite(
      fd, f'process {os.getpid()} on {socket.gethostname()}'.encode(), 0
    )
    try:
      yield
    finally:
      os.ftruncate(fd, 0)
  finally:
    os.close(fd)  # drops the lock


def read_or_build(path: str, read, build, what: str, say=print, wait=True):
  """read(path), or else build(path) by one process of those asking at once.

  read(path) -> the entry's value, or None when the entry is missing or
  unreadable (it never raises for a damaged entry). When it is None, the
  entry's lock is taken, read is tried again (another process may have
  built the entry meanwhile) and only then build(path) -> value runs; build
  must write the entry whole (`publishing`, or an atomic file write).
  wait=False: a process that publishes nothing (one of a multi-host run
  but the first) builds its own value at once, holding no lock.
  """
  value = read(path)
  if value is not None or not wait:
    return build(path) if value is None else value
  with lock(path, what, say):
    value = read(path)
    return value if value is not None else build(path)


@contextlib.contextmanager
def publishing(path: str, publish: bool = True):
  """A private empty folder beside `path` to build a folder entry in; when
  the block ends without an error (and `publish`) it becomes `path` in one
  rename, replacing what was there (a damaged entry: moved aside, then
  deleted). The private folder is deleted in any other case."""
  parent, name = os.path.split(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  private = tempfile.mkdtemp(prefix=f'.{name}.', suffix='.tmp', dir=parent)
  try:
    yield private
    if publish:
      try:
        os.rename(private, path)
      except OSError:  # rename() onto a folder that is not empty fails
        os.rename(path, private + '.old')
        os.rename(private, path)
        _remove(private + '.old')
  finally:
    _remove(private)


def _remove(path: str) -> None:
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path, ignore_errors=True)
  elif os.path.lexists(path):
    os.remove(path)
