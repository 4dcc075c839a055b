"""Orbax checkpoints of the whole TrainState, with a guarded restore."""

import logging
import os

import jax
import orbax.checkpoint as ocp


class CheckpointError(RuntimeError):
  """No usable checkpoint where one was expected."""


def manager(directory: str, every: int, keep: int) -> ocp.CheckpointManager:
  """A CheckpointManager saving every `every` steps, keeping the last `keep`."""
  return ocp.CheckpointManager(
    os.path.abspath(directory),
    options=ocp.CheckpointManagerOptions(
      save_interval_steps=every, max_to_keep=keep, create=True
    ),
  )


def save(mngr: ocp.CheckpointManager, step: int, state, force=False) -> None:
  """Saves `state` at `step` (asynchronously; `mngr.wait_until_finished()`)."""
  mngr.save(step, args=ocp.args.StandardSave(state), force=force)


def restore_latest(mngr: ocp.CheckpointManager, target):
  """Restores the newest checkpoint that is complete and readable.

  target: a state (or its `jax.ShapeDtypeStruct` tree, shardings included)
  giving the structure. Step directories that fail to restore (no commit
  marker, truncated or missing files) are skipped with a warning naming them.
  Returns the restored state, or None when there is no checkpoint at all.
  Raises CheckpointError when checkpoints exist but none is usable.
  """
  steps = sorted(mngr.all_steps(), reverse=True)
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
    target,
  )
  for step in steps:
    path = os.path.join(mngr.directory, str(step))
    try:
      return mngr.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # Orbax raises many types for damaged files.
      logging.warning(
        'skipping unreadable checkpoint %s (%s: %s)',
        path,
        type(e).__name__,
        str(e).splitlines()[0] if str(e) else '',
      )
  if steps:
    raise CheckpointError(
      f'no usable checkpoint in {mngr.directory} (tried steps {steps}). '
      'Move that folder away to start the run from scratch.'
    )
  return None
