"""A run directory read back: its config, its state at a step, its samples."""

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_jax import checkpoint, config as config_lib, data, models
from gan_jax import train_step as ts


def _tuples(value):
  """JSON lists back to the tuples the config held."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def _merge(base: ml_collections.ConfigDict, saved: dict) -> None:
  """Writes `saved` over `base`; fields a newer version added keep defaults."""
  for key, value in saved.items():
    if isinstance(value, dict) and isinstance(
      base.get(key), ml_collections.ConfigDict
    ):
      _merge(base[key], value)
    else:
      base[key] = value


def load_config(workdir: str) -> ml_collections.ConfigDict:
  """The config of the run in `workdir` (its config.json)."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise config_lib.ConfigError(
      f'{path} not found: pass the --workdir of a run made by launch.py.'
    )
  with open(path) as f:
    saved = _tuples(json.load(f))
  config = config_lib.base_config()
  with config.ignore_type():
    _merge(config, saved)
  return config


def generator_variables(state: ts.TrainState) -> dict:
  """G's variables for sampling: EMA weights when the run keeps them."""
  return {
    'params': state.g_params if state.g_ema is None else state.g_ema,
    'batch_stats': state.g_stats,
  }


def restore(workdir: str, step: int | None = None):
  """(config, generator module, TrainState) of `workdir` at `step` (newest).

  Raises CheckpointError naming the steps there are when `step` has none.
  """
  config = load_config(workdir)
  shape = data.DATASETS[config.data.name].shape
  g, d = models.build(config.model, shape)
  g_tx, d_tx = ts.make_optimizers(config.optim)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  abstract = jax.eval_shape(
    lambda: ts.init_state(
      g,
      d,
      g_tx,
      d_tx,
      config.model.z_dim,
      shape,
      jax.random.PRNGKey(0),
      config.ema_decay > 0,
    )
  )
  abstract = jax.tree.map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract
  )
  mngr = checkpoint.manager(os.path.join(workdir, 'checkpoints'), 1, None)
  try:
    if step is None:
      state = checkpoint.restore_latest(mngr, abstract)
      if state is None:
        raise checkpoint.CheckpointError(
          f'no checkpoint in {mngr.directory}: train the run first.'
        )
    else:
      state = checkpoint.restore_step(mngr, abstract, step)
  finally:
    mngr.close()
  return config, g, state


def class_labels(num: int, num_classes: int) -> np.ndarray:
  """Balanced labels i mod K (int32 (num,)); zeros when unconditional."""
  return np.arange(num, dtype=np.int32) % max(num_classes, 1)


def grid_inputs(key, num: int, z_dim: int, num_classes: int):
  """The fixed-noise sample grid: (z (n, z_dim), y (n,), columns).

  Unconditional: `num` draws in rows of 8. Class-conditional: one row per
  class and num // K columns, column j holding the same z for every class.
  """
  if not num_classes:
    return jax.random.normal(key, (num, z_dim)), class_labels(num, 0), 8
  cols = max(1, num // num_classes)
  z = jnp.tile(jax.random.normal(key, (cols, z_dim)), (num_classes, 1))
  return z, np.repeat(np.arange(num_classes, dtype=np.int32), cols), cols


def generate(
  g, variables, z_dim: int, num: int, key, batch=500, num_classes=0
) -> np.ndarray:
  """`num` samples G(z, y), z ~ N(0, I) from `key`: float32 (num, *shape).

  y = class_labels(num, num_classes) (ignored by unconditional G). Batches
  are padded to `batch` so the generator compiles once.
  """
  z = jax.random.normal(key, (num, z_dim))
  y = class_labels(num, num_classes)
  fn = jax.jit(lambda v, z, y: g.apply(v, z, y, train=False))
  out = []
  for i in range(0, num, batch):
    zb, yb = z[i : i + batch], y[i : i + batch]
    pad = batch - len(zb)
    out.append(
      np.asarray(
        fn(variables, jnp.pad(zb, ((0, pad), (0, 0))), np.pad(yb, (0, pad)))
      )[: len(zb)]
    )
  return np.concatenate(out)
