"""Who writes a directory: an exclusive lease, held for a process's life.

A lease on DIR is the file DIR/.lease (rundir.LEASE), locked by its holder
with flock(LOCK_EX) and holding the record {'host', 'pid', 'since'}; its
modification time is the holder's heartbeat, refreshed every BEAT seconds.
It dies with its holder: the kernel drops a flock when the process ends,
however it ends, so a killed run never blocks its rerun. Where flock does
not reach across hosts (cluster filesystems that lock per host, or not at
all), the record decides: a holder on another host is alive while its
heartbeat is younger than STALE seconds (so a run killed there can be
rerun elsewhere STALE seconds later); on this host, while its pid runs. A
holder that releases its lease removes the file. No JAX.
"""

import errno
import fcntl
import json
import os
import socket
import threading
import time

from gan_jax import rundir
from gan_jax.errors import ConfigError, LeaseHeld

BEAT = 30.0  # seconds between heartbeats
STALE = 300.0  # a heartbeat older than this: the holder on another host died
_NO_LOCKS = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS)


def _alive(record: dict, beat: float) -> bool:
  """Whether the holder of `record` (heartbeat at time `beat`) still runs."""
  if record.get('host') != socket.gethostname():
    return time.time() - beat < STALE
  try:
    os.kill(int(record['pid']), 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # another user's process
    return True
  return True


def _read(path: str):
  """(record, heartbeat) of the lease file at `path`, or (None, 0)."""
  try:
    with open(path) as f:
      text = f.read()
    beat = os.stat(path).st_mtime
  except FileNotFoundError:
    return None, 0.0
  if not text:  # created, not yet written: nobody's record
    return None, 0.0
  try:
    return json.loads(text), beat
  except ValueError:  # being written: its writer holds it
    return {'host': '?', 'pid': 0, 'since': '?'}, time.time()


def _lock(fd: int, tries: int = 5) -> None:
  """flock(LOCK_EX) without waiting for a holder; a reader's brief shared
  lock (`holder`) is waited out over a few tries."""
  for i in range(tries):
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      return
    except BlockingIOError:
      if i == tries - 1:
        raise
      time.sleep(0.05)


def describe(record: dict) -> str:
  return (
    f'process {record["pid"]} on {record["host"]} (since {record["since"]})'
  )


def holder(directory: str) -> dict | None:
  """The record of the process holding `directory`'s lease, or None when it
  is free (no lease, or its holder died). Reads only."""
  path = os.path.join(directory, rundir.LEASE)
  if not os.path.exists(path):
    return None
  try:
    fd = os.open(path, os.O_RDONLY)
  except FileNotFoundError:
    return None
  try:
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    locked = False
  except BlockingIOError:
    locked = True
  except OSError as e:
    if e.errno not in _NO_LOCKS:
      raise
    locked = False
  finally:
    os.close(fd)  # drops a shared lock taken here
  record, beat = _read(path)
  if record is None:
    return None
  if locked:
    return record
  return record if _alive(record, beat) else None


class Lease:
  """The exclusive lease on `directory` for this process (`acquire`, then
  `release`; or `with Lease(d):`). acquire raises LeaseHeld, naming the
  holder, when another live process holds it; it creates `directory`, and
  release removes what it created if nothing else was written there."""

  def __init__(self, directory: str):
    self.directory = directory
    self.path = os.path.join(directory, rundir.LEASE)
    self._fd = None
    self._created = []  # folders acquire made
    self._stop = threading.Event()
    self._thread = None

  def _held(self, record) -> LeaseHeld:
    return LeaseHeld(
      f'{self.directory} is being written by {describe(record)}; wait for '
      'it to end (or stop it), then rerun the same command.'
    )

  def acquire(self) -> 'Lease':
    missing, d = [], os.path.abspath(self.directory)
    while not os.path.isdir(d):  # removed again on release when still empty
      missing.append(d)
      d = os.path.dirname(d)
    try:
      os.makedirs(self.directory, exist_ok=True)
      self._created = missing
      return self._acquire()
    except OSError as e:
      raise ConfigError(
        f'cannot write to workdir {self.directory} ({e.strerror}); pass a '
        'writable --workdir.'
      ) from e

  def _acquire(self) -> 'Lease':
    while True:
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        _lock(fd)
      except BlockingIOError:
        os.close(fd)
        record, _ = _read(self.path)
        raise self._held(record or {'host': '?', 'pid': '?', 'since': '?'})
      except OSError as e:
        if e.errno not in _NO_LOCKS:
          os.close(fd)
          raise
      try:  # a releasing holder may have removed the file we opened
        same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
      except FileNotFoundError:
        same = False
      if not same:
        os.close(fd)
        continue
      record, beat = _read(self.path)
      mine = record and record.get('pid') == os.getpid()
      mine = mine and record.get('host') == socket.gethostname()
      if record and not mine and _alive(record, beat):
        os.close(fd)
        raise self._held(record)
      break
    record = {
      'host': socket.gethostname(),
      'pid': os.getpid(),
      'since': time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    os.fsync(fd)
    self._fd = fd
    self._stop.clear()
    self._thread = threading.Thread(target=self._beat, daemon=True)
    self._thread.start()
    return self

  def _beat(self) -> None:
    while not self._stop.wait(BEAT):
      try:
        os.utime(self.path)
      except OSError:
        pass  # the next beat tries again; a full disk does not stop a run

  def release(self) -> None:
    """Removes the lease file and drops the lock (no-op when not held)."""
    if self._fd is None:
      return
    self._stop.set()
    self._thread.join()
    try:
      if os.stat(self.path).st_ino == os.fstat(self._fd).st_ino:
        os.unlink(self.path)
    except FileNotFoundError:
      pass
    os.close(self._fd)
    self._fd = None
    for d in self._created:  # deepest first: a failed start leaves nothing
      try:
        os.rmdir(d)
      except OSError:
        break

  def __enter__(self) -> 'Lease':
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
