"""A generator's inputs: the noise prior, balanced labels, the sample grid."""

import jax
import jax.numpy as jnp
import numpy as np


PRIORS = ('normal', 'uniform')


def noise(key, shape, prior: str = 'normal') -> jax.Array:
  """z of `shape`: N(0, I), or uniform on [-sqrt 3, sqrt 3] (variance 1)."""
  if prior == 'uniform':
    bound = jnp.sqrt(3.0)
    return jax.random.uniform(key, shape, minval=-bound, maxval=bound)
  return jax.random.normal(key, shape)


def class_labels(num: int, num_classes: int) -> np.ndarray:
  """Balanced labels i mod K (int32 (num,)); zeros when unconditional."""
  return np.arange(num, dtype=np.int32) % max(num_classes, 1)


def grid_inputs(key, num: int, z_dim: int, num_classes: int, prior='normal'):
  """The fixed-noise sample grid: (z (n, z_dim), y (n,), columns).

  Unconditional: `num` draws in rows of 8. Class-conditional: one row per
  class and num // K columns, column j holding the same z for every class.
  """
  if not num_classes:
    return noise(key, (num, z_dim), prior), class_labels(num, 0), 8
  cols = max(1, num // num_classes)
  z = jnp.tile(noise(key, (cols, z_dim), prior), (num_classes, 1))
  return z, np.repeat(np.arange(num_classes, dtype=np.int32), cols), cols
