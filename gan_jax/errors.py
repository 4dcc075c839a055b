"""The errors a user can act on; every command catches `Error` and prints it.

A leaf module: it imports nothing of gan_jax, so any module may raise these.
Each message says what to change.
"""

import difflib
import re
import sys

from absl import flags


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


def flag_error(e: Exception, flag_values: flags.FlagValues) -> str:
  """absl's error about a command line as one line: an unknown flag or enum
  value with the valid ones closest first, every missing required flag, or
  else the last line (config_flags ends a traceback with the reason) without
  the exception's class."""
  if isinstance(e, flags.UnrecognizedFlagError):
    own = {  # the command's flags, not absl's or a library's
      f.name
      for module, module_flags in flag_values.flags_by_module_dict().items()
      if module == sys.argv[0] or module.startswith('gan_jax.')
      for f in module_flags
    }
    valid = closest_first(e.flagname, own)
    return f'unknown flag --{e.flagname}; valid: --{", --".join(valid)}'
  message = str(e)
  missing = re.findall(
    r'Flag --(\w+) must have a value other than None', message
  )
  if missing:
    return f'missing required flag(s) --{", --".join(missing)}'
  enum = re.fullmatch(
    r'flag --(\w+)=(.*): value should be one of <(.*)>', message
  )
  if enum:
    name, value, choices = enum.groups()
    valid = closest_first(value, choices.split('|'))
    return f'unknown --{name} value {value!r}; valid: {", ".join(valid)}'
  last = [line.strip() for line in message.splitlines() if line.strip()][-1]
  head, sep, tail = last.partition(': ')
  return tail if sep and head.rsplit('.', 1)[-1].endswith('Error') else last
