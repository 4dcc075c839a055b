"""What a run says on the terminal: a line per long phase, progress bars,
and third-party messages that mean nothing to a user kept quiet.

Only process 0 speaks (a multi-host run prints once).
"""

import contextlib
import logging
import os
import sys
import time

from absl import flags
import jax
import tqdm

from gan_jax import errors

# Third-party log lines dropped: they state facts about optional packages
# that change nothing here (TFDS decodes MNIST with PIL; OpenCV is faster at
# nothing this project reads).
_NOISE = ('OpenCV is not installed',)


_ORBAX = f'{os.sep}orbax{os.sep}'


class _DropNoise(logging.Filter):
  def filter(self, record: logging.LogRecord) -> bool:
    return not (record.getMessage().startswith(_NOISE) or _failed_save(record))


def _failed_save(record: logging.LogRecord) -> bool:
  """A traceback Orbax logs, or one of a failed write that asyncio logs
  when it drops a future (only Orbax runs event loops here): Orbax raises
  each failed save again in the run (checkpoint.save, checkpoint.close),
  which reports it in one line."""
  if not record.exc_info:
    return False
  if record.name == 'asyncio':
    error = record.exc_info[1]  # tensorstore's errors carry os_error_code
    return isinstance(error, OSError) or 'os_error_code=' in str(error)
  tb = record.exc_info[2]
  while tb is not None and _ORBAX not in tb.tb_frame.f_code.co_filename:
    tb = tb.tb_next
  return tb is not None or _ORBAX in record.pathname


def _unraisable(hook):
  """`hook` (sys.unraisablehook) but for tensorstore's callbacks into the
  event loop Orbax closed once a write of its save failed: one traceback
  per pending write, about a failure the run reports once."""

  def quieter(unraisable):
    error = unraisable.exc_value
    if not (
      isinstance(error, RuntimeError) and str(error) == 'Event loop is closed'
    ):
      hook(unraisable)

  return quieter


def quiet_third_party() -> None:
  """Drops _NOISE from absl's log and TensorFlow's C++ info and warnings
  (before TensorFlow is imported, which TFDS does only to prepare data), and
  the tracebacks Orbax's threads print when a save fails (the run raises
  that failure: `checkpoint.save`, `checkpoint.close`)."""
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  for name in ('absl', 'asyncio'):  # Orbax's log, its event loops' futures
    logging.getLogger(name).addFilter(_DropNoise())
  sys.unraisablehook = _unraisable(sys.unraisablehook)


def say(message: str) -> None:
  """One line on stdout above any progress bar (process 0 only)."""
  if jax.process_index() == 0:
    tqdm.tqdm.write(message, file=sys.stdout)
    sys.stdout.flush()


def scores(metrics: dict, real=None) -> str:
  """'fd 12.3 (real data 1.02), kid ...': metrics to 3 significant digits,
  each beside its value in `real` when that has it."""
  real = real or {}
  return ', '.join(
    f'{k} {v:.3g}' + (f' (real data {real[k]:.3g})' if k in real else '')
    for k, v in metrics.items()
  )


@contextlib.contextmanager
def phase(message: str):
  """'message ...' before the block and its wall time after it."""
  say(f'{message} ...')
  start = time.perf_counter()
  yield
  say(f'  done in {time.perf_counter() - start:.1f} s')


def bar(total: int, unit='step', initial=0, desc=None, shown=True):
  """A tqdm progress bar on stderr: off unless `shown`, on process 0 and
  on a terminal."""
  return tqdm.tqdm(
    total=total,
    initial=initial,
    unit=unit,
    desc=desc,
    disable=None if shown and jax.process_index() == 0 else True,
    dynamic_ncols=True,
  )


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing for `app.run(main, flags_parser=...)`, where a bad
  or missing flag ends in one line (`error: ...`, see `errors.flag_error`)."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(f'error: {errors.flag_error(e, flags.FLAGS)}')
