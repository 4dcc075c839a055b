"""The errors a user can act on; every command catches `Error` and prints it.

A leaf module: it imports nothing of gan_jax, so any module may raise these.
Each message says what to change.
"""

import difflib


class Error(Exception):
  """Base of every user-facing error: the message is the whole story."""


class ConfigError(Error, ValueError):
  """A config (or command line) that cannot run."""


class DataError(Error, RuntimeError):
  """A dataset or weights file that is missing, damaged or unpreparable."""


class InceptionWeightsError(DataError):
  """The FID Inception-v3 weights file is missing or does not fit."""


class CheckpointError(Error, RuntimeError):
  """No usable checkpoint where one was expected."""


class TrainingDiverged(Error, RuntimeError):
  """A loss or gradient norm became NaN or infinite."""


class Interrupted(Error, RuntimeError):
  """SIGTERM/SIGINT: a checkpoint of the current step was saved first."""


class WriteFailed(Error, RuntimeError):
  """A run's record or checkpoint could not be written (a full disk, say);
  the newest complete checkpoint is kept for the rerun to resume from."""


class LeaseHeld(Error, RuntimeError):
  """A directory another live process writes (gan_jax.lease)."""


class ReportError(Error, ValueError):
  """An input the report cannot read; the message says what was expected."""


def closest_first(name: str, valid) -> list[str]:
  """`valid` sorted, the names close to `name` first (closest first)."""
  valid = sorted(valid)
  close = difflib.get_close_matches(str(name), valid, len(valid), 0.6)
  return close + [v for v in valid if v not in close]


def check_name(kind: str, name: str, valid) -> None:
  """Raises ConfigError listing the valid names, closest first, when `name`
  is not one."""
  if name not in valid:
    ordered = closest_first(name, valid)
    raise ConfigError(f'unknown {kind} {name!r}; valid: {", ".join(ordered)}')
