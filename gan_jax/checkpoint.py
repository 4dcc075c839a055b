"""Orbax checkpoints of the whole TrainState, with a guarded restore."""

import contextlib
import logging
import os
import re
import time
from typing import Any

import flax
import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from gan_jax import data, rundir, train_state
from gan_jax.errors import CheckpointError


# tensorstore's errors name the OS error behind a failed read or write.
_OS_ERROR_CODE = re.compile(r"os_error_code='(\d+)'")


def manager(directory: str, every: int, keep: int | None, writer=False):
  """A CheckpointManager saving every `every` steps, keeping `keep` (None: all).

  One unnamed item (the state, in STEP/default/) is fixed here, not
  guessed from the first step folder read: a half-written one, without
  default/, would make Orbax read every other step as several items.
  writer: the manager of the run's writer (it holds the run's lease): step
  folders a save left unfinished (`STEP.orbax-checkpoint-tmp`, never
  restored) are deleted first, so a full disk gets their space back.
  """
  return ocp.CheckpointManager(
    os.path.abspath(directory),
    item_handlers=ocp.StandardCheckpointHandler(),
    options=ocp.CheckpointManagerOptions(
      save_interval_steps=every,
      max_to_keep=keep,
      create=True,
      cleanup_tmp_directories=writer,
    ),
  )


def committed_steps(directory: str) -> list[int]:
  """Steps saved completely in `directory` (read from disk; no manager)."""
  if not os.path.isdir(directory):
    return []
  return sorted(ocp.path.step.checkpoint_steps(directory))


def save(mngr: ocp.CheckpointManager, step: int, state, force=False) -> None:
  """Saves `state` at `step` in the background (`close` waits for it).

  Orbax writes in background threads and raises a failed write at the
  next save or close: OSError naming the folder (`_os_errors`) when this
  save or the previous one could not write.
  """
  with _os_errors(mngr):
    mngr.save(step, args=ocp.args.StandardSave(state), force=force)


def close(mngr: ocp.CheckpointManager) -> None:
  """Waits for the last save, then closes `mngr`: its threads end even when
  a save failed. Raises that failure as `save` does."""
  error = None
  for _ in range(4):  # Orbax raises each failed part of a save once
    try:
      mngr.close()
      break
    except Exception as e:  # pylint: disable=broad-exception-caught
      error = error or e
  if error is not None:
    with _os_errors(mngr):
      raise error


@contextlib.contextmanager
def _os_errors(mngr: ocp.CheckpointManager):
  """Orbax's failed writes as an OSError naming the checkpoint folder:
  Orbax's own OSError, or tensorstore's ValueError (its message carries the
  errno as os_error_code). Other errors pass unchanged."""
  try:
    yield
  except Exception as e:
    n = _errno(e)
    if n is None:
      raise
    raise OSError(n, os.strerror(n), str(mngr.directory)) from e


def _errno(e: BaseException | None) -> int | None:
  """The OS error number in `e` or the exceptions it chains, or None."""
  seen = set()
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, OSError) and e.errno:
      return e.errno
    if found := _OS_ERROR_CODE.search(str(e)):
      return int(found.group(1))
    e = e.__cause__ or e.__context__
  return None


def restore_step(mngr: ocp.CheckpointManager, target, step: int):
  """Restores checkpoint `step`; CheckpointError lists the steps there are."""
  if step not in mngr.all_steps():
    raise CheckpointError(
      f'no checkpoint of step {step} in {mngr.directory}; there are steps '
      f'{sorted(mngr.all_steps())}.'
    )
  try:
    return _restore(mngr, step, _abstract(target))
  except Exception as e:  # Orbax raises many types for damaged files.
    raise CheckpointError(
      f'checkpoint {step} in {mngr.directory} is unreadable ({type(e).__name__}'
      '); choose another step.'
    ) from e


@flax.struct.dataclass
class _BeforeAdaptive:
  """The TrainState as checkpoints written before it held `adaptive` (D's
  adaptive regularisers' memory) store it."""

  step: Any
  rng: Any
  g_params: Any
  g_stats: Any
  d_params: Any
  d_stats: Any
  g_opt: Any
  d_opt: Any
  g_ema: Any


def _restore(mngr: ocp.CheckpointManager, step: int, abstract):
  """Checkpoint `step` into the abstract state; a checkpoint from before
  TrainState.adaptive restores into a state whose `adaptive` is None."""
  try:
    return mngr.restore(step, args=ocp.args.StandardRestore(abstract))
  except ValueError:
    if not isinstance(abstract, train_state.TrainState) or (
      abstract.adaptive is not None
    ):
      raise
    fields = {k: getattr(abstract, k) for k in _BeforeAdaptive.__annotations__}
    old = mngr.restore(
      step, args=ocp.args.StandardRestore(_BeforeAdaptive(**fields))
    )
    return train_state.TrainState(**vars(old), adaptive=None)


def _abstract(target):
  """ShapeDtypeStructs (with shardings) of a state or of its abstract tree."""
  return jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
    target,
  )


def all_processes(flag: bool) -> bool:
  """True when `flag` holds on every process (a collective when there are
  several: every process must call it the same number of times)."""
  if jax.process_count() == 1:
    return flag
  flags = multihost_utils.process_allgather(np.int32(flag))
  return bool(np.all(flags))


def _agreed_steps(mngr: ocp.CheckpointManager) -> list[int]:
  """The manager's steps, newest first, as process 0 lists them."""
  steps = sorted(mngr.all_steps(), reverse=True)
  if jax.process_count() == 1:
    return steps
  n = int(multihost_utils.broadcast_one_to_all(np.int32(len(steps))))
  if not n:
    return []
  padded = np.zeros((n,), np.int64)
  padded[: min(n, len(steps))] = steps[:n]
  return [int(s) for s in multihost_utils.broadcast_one_to_all(padded)]


def restore_latest(mngr: ocp.CheckpointManager, target, writer=True):
  """Restores the newest checkpoint that is complete and readable.

  target: a state (or its `jax.ShapeDtypeStruct` tree, shardings included)
  giving the structure. Step directories that fail to restore (no commit
  marker, truncated or missing files) are skipped with a warning naming them;
  once an older one restores, the skipped ones are moved (never deleted) to
  `corrupt_checkpoints/` beside the checkpoint folder, so that training can
  save those steps again. Returns the restored state, or None when there is
  no checkpoint at all. Raises CheckpointError when checkpoints exist but none
  is usable, leaving them in place.

  With several processes every one tries the steps process 0 lists, a step
  counts as readable only when it restored on all of them, and process 0
  moves the skipped ones aside after a barrier that every process reaches
  once it holds the agreed state, so no process reads a folder being moved.
  writer: whether this is the run's writer (it holds the lease); a reader
  (evaluation, sampling: the run may be training) only skips.
  """
  steps = _agreed_steps(mngr)
  abstract = _abstract(target)
  skipped = []
  for step in steps:
    path = os.path.join(mngr.directory, str(step))
    try:
      state = _restore(mngr, step, abstract)
    except Exception as e:  # Orbax raises many types for damaged files.
      logging.warning(
        'skipping unreadable checkpoint %s (%s: %.200s)',
        path,
        type(e).__name__,
        str(e).splitlines()[0] if str(e) else '',
      )
      state = None
    if not all_processes(state is not None):
      if state is not None:
        logging.warning(
          'skipping checkpoint %s: another process cannot read it', path
        )
      skipped.append(path)
      continue
    if skipped and writer:
      logging.warning('resuming from checkpoint %s', path)
      _move_aside(mngr, skipped)
    return state
  if steps:
    raise CheckpointError(
      f'no usable checkpoint in {mngr.directory} (tried steps {steps}). '
      'Move that folder away to start the run from scratch.'
    )
  return None


def _move_aside(mngr: ocp.CheckpointManager, skipped: list[str]) -> None:
  """Process 0 moves `skipped` to corrupt_checkpoints/ between two barriers
  (every process has restored before, none lists steps during); then each
  process's manager rereads the folder."""
  several = jax.process_count() > 1
  if several:
    multihost_utils.sync_global_devices('gan_jax: checkpoint restored')
  if jax.process_index() == 0:
    aside = os.path.join(
      os.path.dirname(mngr.directory), rundir.CORRUPT_CHECKPOINTS
    )
    os.makedirs(aside, exist_ok=True)
    for bad in skipped:
      dest = os.path.join(aside, f'{os.path.basename(bad)}_{time.time_ns()}')
      os.replace(bad, dest)
      logging.warning('moved unreadable checkpoint %s to %s', bad, dest)
  if several:
    multihost_utils.sync_global_devices('gan_jax: damaged checkpoints moved')
  mngr.reload()


def restore_run(workdir: str, step: int | None = None):
  """(config, GAN, TrainState) of the run in `workdir` at `step` (newest),
  on one device, for sampling and evaluation.

  Raises CheckpointError naming the steps there are when `step` has none.
  """
  config = rundir.load_config(workdir)
  directory = os.path.join(workdir, rundir.CHECKPOINTS)
  if not os.path.isdir(directory):  # a manager would create it
    raise CheckpointError(f'no checkpoint in {directory}: train the run first.')
  shape = data.DATASETS[config.data.name].shape
  gan = train_state.build(config, shape)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.eval_shape(
    lambda: train_state.init_state(
      gan,
      config.model.z_dim,
      shape,
      jax.random.PRNGKey(0),
      config.ema_decay > 0,
      adaptive=train_state.initial_adaptive(config),
    )
  )
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract
  )
  mngr = manager(directory, 1, None)
  try:
    if step is None:
      state = restore_latest(mngr, abstract, writer=False)
      if state is None:
        raise CheckpointError(
          f'no checkpoint in {mngr.directory}: train the run first.'
        )
    else:
      state = restore_step(mngr, abstract, step)
  finally:
    mngr.close()
  return config, gan, state
