"""Fully connected pair in the spirit of Goodfellow et al. 2014 (MNIST).

G: z -> [dense h, ReLU] x n -> dense prod(shape), tanh (images in [-1, 1]),
   sigmoid (images in [0, 1]: config.data.unit_range) or linear
   (`output='linear'`, for unbounded data such as the toy mixtures); with
   `norm='batch'` each hidden layer is dense h without bias, BatchNorm, ReLU
   (PacGAN's toy generator, Lin et al. 2018).
D: x -> dropout q -> [dense h, LReLU(0.2), dropout p] x n -> dense 1 logit
   or, with `pieces=k > 1`, maxout units (Goodfellow et al. 2013) in place of
   dense + LReLU: unit j is max_i (x W_ji + b_ji) over k linear pieces, the
   pieces of unit j being columns j*k .. j*k+k-1 of one dense h*k layer
   (Goodfellow et al. 2014, MNIST: 240 units x 5 pieces, twice, input
   dropout q = 0.2 and p = 0.5).
`activation` replaces the hidden layers' ReLU (G) or LReLU(0.2) (D) by
another of ACTIVATIONS (Metz et al. 2017's released notebook: tanh).
`weight_init` sets every kernel's initialiser: 'default' (Flax's LeCun normal),
'uniform:a' (U[-a, a]; Goodfellow et al. 2014: G 0.05, D 0.005),
'normal:s' (N(0, s^2); PacGAN: 0.02) or 'orthogonal:g' (a random
orthogonal matrix times g; Metz et al.: 1.4); biases start at 0, except G's output
bias with `output_bias='marginals'`: logit of each pixel's mean over the
training images, clipped to [1e-7, 1 - 1e-7] (pylearn2's
init_sigmoid_bias_from_marginals, used by Goodfellow et al. 2014), set by
the training loop from the data (marginal_bias, with_output_bias).
With `num_classes` K > 0: G sees [z, onehot(y)] (cond 'concat', Mirza &
Osindero 2014); D projects a class embedding on its last hidden layer
('projection') or adds a classifier ('acgan'), see models.conditional.
"""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.models import conditional, norms

OUTPUTS = {'tanh': jnp.tanh, 'sigmoid': jax.nn.sigmoid, 'linear': lambda x: x}
ACTIVATIONS = {
  'relu': nn.relu,
  'leaky_relu': lambda x: nn.leaky_relu(x, 0.2),
  'tanh': jnp.tanh,
}


def activation(name: str):
  """A hidden layer's nonlinearity by name (ACTIVATIONS)."""
  if name not in ACTIVATIONS:
    raise ValueError(
      f'unknown activation {name!r}; valid: {", ".join(ACTIVATIONS)}'
    )
  return ACTIVATIONS[name]


def kernel_init(spec: str):
  """'default', 'uniform:a', 'normal:s' or 'orthogonal:g' -> a Flax kernel
  initialiser."""
  kind, _, scale = spec.partition(':')
  if kind == 'default' and not scale:
    return nn.linear.default_kernel_init
  try:
    value = float(scale)
  except ValueError:
    value = -1.0
  if kind == 'uniform' and value > 0:
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(
      key, shape, dtype, -value, value
    )
  if kind == 'normal' and value > 0:
    return nn.initializers.normal(value)
  if kind == 'orthogonal' and value > 0:
    return nn.initializers.orthogonal(value)
  raise ValueError(
    f"unknown init {spec!r}; valid: 'default', 'uniform:a', 'normal:s', "
    "'orthogonal:g' (a, s, g > 0)"
  )


def marginal_bias(images) -> np.ndarray:
  """uint8 images (N, *shape) -> logit(clip(mean pixel / 255)), float32
  (prod(shape),): sigmoid of it is each pixel's mean intensity."""
  flat = np.asarray(images).reshape(len(images), -1)
  mean = np.clip(flat.mean(axis=0, dtype=np.float64) / 255.0, 1e-7, 1 - 1e-7)
  return np.log(mean / (1 - mean)).astype(np.float32)


def with_output_bias(params, bias):
  """G's parameters with the bias of its output layer (the last Dense_i)
  replaced by `bias`."""
  last = max(
    (k for k in params if k.startswith('Dense_')), key=lambda k: int(k[6:])
  )
  return {**params, last: {**params[last], 'bias': jnp.asarray(bias)}}


class Generator(nn.Module):
  """z (B, z_dim), labels y (B,) -> samples (B, *shape)."""

  shape: tuple[int, ...]
  hidden: tuple[int, ...] = (1200, 1200)
  output: str = 'tanh'  # a name in OUTPUTS
  norm: str = 'none'  # or 'batch'
  bn_epsilon: float = 1e-5  # BatchNorm's eps (Blocks, PacGAN's code: 1e-4)
  activation: str = 'relu'  # a name in ACTIVATIONS
  weight_init: str = 'default'
  output_bias: str = 'zero'  # or 'marginals' (set from the data)
  num_classes: int = 0
  cond: str = 'concat'  # the only conditioning of the MLP
  axis_name: str | None = None  # BatchNorm's batch axis under shard_map

  @nn.compact
  def __call__(self, z, y=None, train: bool = True):
    conditional.check(self.cond, ('concat',), self.num_classes)
    if self.output not in OUTPUTS or self.norm not in ('none', 'batch'):
      raise ValueError(
        f'unknown output {self.output!r} or norm {self.norm!r}; valid: '
        f"{', '.join(OUTPUTS)} and 'none', 'batch'"
      )
    if self.output_bias not in ('zero', 'marginals'):
      raise ValueError(
        f'unknown output_bias {self.output_bias!r}; valid: zero, marginals'
      )
    init = kernel_init(self.weight_init)
    act = activation(self.activation)
    x = conditional.g_input(z, y, self.num_classes, self.cond)
    for h in self.hidden:
      if self.norm == 'batch':
        x = nn.Dense(h, use_bias=False, kernel_init=init)(x)
        x = norms.batch_norm(train, self.axis_name, self.bn_epsilon)(x)
      else:
        x = nn.Dense(h, kernel_init=init)(x)
      x = act(x)
    x = nn.Dense(math.prod(self.shape), kernel_init=init)(x)
    return OUTPUTS[self.output](x).reshape(z.shape[0], *self.shape)


class Discriminator(nn.Module):
  """samples (B, ...), labels y (B,) -> logits (B,) (see
  conditional.d_head for K > 0); dropout draws from the 'dropout' rng."""

  hidden: tuple[int, ...] = (240, 240)
  dropout: float = 0.0
  input_dropout: float = 0.0
  pieces: int = 1  # > 1: maxout over this many linear pieces per unit
  activation: str = 'leaky_relu'  # a name in ACTIVATIONS (pieces = 1)
  weight_init: str = 'default'
  num_classes: int = 0
  cond: str = 'projection'
  axis_name: str | None = None  # unused: no BatchNorm

  @nn.compact
  def __call__(self, x, y=None, train: bool = True):
    conditional.check(self.cond, conditional.D_CONDS, self.num_classes)
    if self.pieces < 1:
      raise ValueError(f'pieces must be >= 1, got {self.pieces}')
    dense = functools.partial(
      nn.Dense, kernel_init=kernel_init(self.weight_init)
    )
    act = activation(self.activation)
    x = x.reshape(x.shape[0], -1)
    x = nn.Dropout(  # named: the hidden layers' Dropout_i keep their rngs
      self.input_dropout, deterministic=not train, name='input_dropout'
    )(x)
    for h in self.hidden:
      if self.pieces == 1:
        x = act(dense(h)(x))
      else:
        x = dense(h * self.pieces)(x)
        x = jnp.max(x.reshape(x.shape[0], h, self.pieces), axis=-1)
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return conditional.d_head(self, x, y, dense, nn.Embed)
