"""A run's generator in inference mode: what training's picture, evaluation
and `gan_jax.sample` draw from.

The weights and BatchNorm statistics are those train_state.generator_variables
picks (EMA weights, standing statistics); samples come back on the data's
[-1, 1] scale (data.to_symmetric), as pictures and metrics read them.
"""

import functools

import jax
import numpy as np

from gan_jax import batching, data, sampling, train_state


class Sampler:
  """G(z, y) of a TrainState, for one run's config."""

  def __init__(self, g, config):
    model, standing = config.model, config.standing_stats
    self.z_dim, self.prior = model.z_dim, model.z_prior
    self.num_classes, self.standing = model.num_classes, standing
    self.data_config = config.data
    self._variables = jax.jit(
      lambda s: train_state.generator_variables(
        g, s, model.z_dim, model.z_prior, standing
      )
    )
    self._apply = jax.jit(lambda v, z, y: g.apply(v, z, y, train=False))

  def __call__(self, state, z, y) -> np.ndarray:
    """G(z, y): float32 (n, *shape) in [-1, 1]; z (n, z_dim), y (n,)."""
    out = np.asarray(self._apply(self._variables(state), z, y))
    return data.to_symmetric(out, self.data_config)

  def draw(self, state, num: int, key, batch: int = 500):
    """(samples (num, *shape) in [-1, 1], labels (num,)): z ~ the prior from
    `key`, labels sampling.class_labels; G runs in blocks of `batch` so it
    compiles once."""
    z = sampling.noise(key, (num, self.z_dim), self.prior)
    y = sampling.class_labels(num, self.num_classes)
    fn = functools.partial(self._apply, self._variables(state))
    out = batching.batched(fn, (z, y), batch)
    return data.to_symmetric(out, self.data_config), y

  def weights(self, state) -> str:
    """Which generator the samples come from, as a protocol states it."""
    if state.g_ema is not None:
      return 'EMA weights'
    if train_state.uses_standing_stats(state, self.standing):
      return 'trained weights with standing BatchNorm statistics'
    return 'trained weights'
