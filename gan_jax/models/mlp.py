"""Fully connected pair in the spirit of Goodfellow et al. 2014 (MNIST).

G: z -> [dense h, ReLU] x n -> dense prod(shape), tanh (images in [-1, 1])
   or linear (`output='linear'`, for unbounded data such as the toy mixtures)
D: x -> [dense h, LReLU(0.2), dropout p] x n -> dense 1 logit
   or, with `pieces=k > 1`, maxout units (Goodfellow et al. 2013) in place of
   dense + LReLU: unit j is max_i (x W_ji + b_ji) over k linear pieces, the
   pieces of unit j being columns j*k .. j*k+k-1 of one dense h*k layer
   (Goodfellow et al. 2014, MNIST: 240 units x 5 pieces, twice).
With `num_classes` K > 0: G sees [z, onehot(y)] (cond 'concat', Mirza &
Osindero 2014); D projects a class embedding on its last hidden layer
('projection') or adds a classifier ('acgan'), see models.conditional.
"""

import math

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import conditional


class Generator(nn.Module):
  """z (B, z_dim), labels y (B,) -> samples (B, *shape)."""

  shape: tuple[int, ...]
  hidden: tuple[int, ...] = (1200, 1200)
  output: str = 'tanh'  # or 'linear'
  num_classes: int = 0
  cond: str = 'concat'  # the only conditioning without BatchNorm
  axis_name: str | None = None  # unused: no BatchNorm

  @nn.compact
  def __call__(self, z, y=None, train: bool = True):
    del train
    conditional.check(self.cond, ('concat',), self.num_classes)
    x = conditional.g_input(z, y, self.num_classes, self.cond)
    for h in self.hidden:
      x = nn.relu(nn.Dense(h)(x))
    x = nn.Dense(math.prod(self.shape))(x)
    if self.output == 'tanh':
      x = jnp.tanh(x)
    elif self.output != 'linear':
      raise ValueError(f'unknown output {self.output!r}; valid: linear, tanh')
    return x.reshape(z.shape[0], *self.shape)


class Discriminator(nn.Module):
  """samples (B, ...), labels y (B,) -> logits (B,) (see
  conditional.d_head for K > 0); dropout draws from the 'dropout' rng."""

  hidden: tuple[int, ...] = (240, 240)
  dropout: float = 0.0
  pieces: int = 1  # > 1: maxout over this many linear pieces per unit
  num_classes: int = 0
  cond: str = 'projection'
  axis_name: str | None = None  # unused: no BatchNorm

  @nn.compact
  def __call__(self, x, y=None, train: bool = True):
    conditional.check(self.cond, conditional.D_CONDS, self.num_classes)
    if self.pieces < 1:
      raise ValueError(f'pieces must be >= 1, got {self.pieces}')
    x = x.reshape(x.shape[0], -1)
    for h in self.hidden:
      if self.pieces == 1:
        x = nn.leaky_relu(nn.Dense(h)(x), 0.2)
      else:
        x = nn.Dense(h * self.pieces)(x)
        x = jnp.max(x.reshape(x.shape[0], h, self.pieces), axis=-1)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return conditional.d_head(self, x, y, nn.Dense, nn.Embed)
