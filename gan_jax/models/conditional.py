"""Class conditioning shared by the model families (labels y in {0..K-1}).

Every family takes `num_classes` K (0: unconditional, labels ignored) and
  G `cond`: 'bn'     class-conditional BatchNorm (de Vries et al. 2017;
                     Miyato & Koyama 2018): BN without its own affine, then
                     x * gamma[y] + beta[y], gamma (K, C) from 1, beta from 0;
            'concat' z -> [z, onehot(y)] (Mirza & Osindero 2014): a label
                     embedding learnt by G's first dense layer;
  D `cond`: 'projection'  l(x, y) = psi(phi(x)) + <V[y], phi(x)> (Miyato &
                     Koyama 2018), phi(x) (B, F) D's last features, psi its
                     unconditional dense head, V (K, F) the class embedding
                     (spectrally normalised with the rest of D);
            'acgan'  an auxiliary classifier (Odena et al. 2017): D returns
                     (l(x) (B,), class logits (B, K) = dense(phi(x))).
D sows phi(x) as 'intermediates'/'features' so it can be inspected.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import norms

G_CONDS = ('bn', 'concat')
D_CONDS = ('projection', 'acgan')


def check(cond: str, valid: tuple[str, ...], num_classes: int) -> None:
  """Raises ValueError for an unknown `cond` or a negative class count."""
  if cond not in valid:
    raise ValueError(f'unknown cond {cond!r}; valid: {", ".join(valid)}')
  if num_classes < 0:
    raise ValueError(f'num_classes must be >= 0, got {num_classes}')


def _labels(y, batch: int):
  """Labels (B,) int; None (an unconditional caller) is an error."""
  if y is None:
    raise ValueError('a class-conditional model needs labels y (B,)')
  return jnp.broadcast_to(jnp.asarray(y, jnp.int32), (batch,))


def g_input(z, y, num_classes: int, cond: str):
  """z (B, z_dim) -> [z, onehot(y)] (B, z_dim + K) for cond 'concat'."""
  if not num_classes or cond != 'concat':
    return z
  onehot = jax.nn.one_hot(_labels(y, z.shape[0]), num_classes, dtype=z.dtype)
  return jnp.concatenate([z, onehot], axis=-1)


class ClassBatchNorm(nn.Module):
  """x (B, ..., C), y (B,) -> BN(x) * gamma[y] + beta[y] (per-class affine)."""

  num_classes: int
  train: bool
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, y):
    x = norms.batch_norm(
      self.train, self.axis_name, use_scale=False, use_bias=False
    )(x)
    c = x.shape[-1]
    gamma = nn.Embed(
      self.num_classes, c, embedding_init=nn.initializers.ones, name='gamma'
    )
    beta = nn.Embed(
      self.num_classes, c, embedding_init=nn.initializers.zeros, name='beta'
    )
    y = _labels(y, x.shape[0])
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (c,)
    return x * gamma(y).reshape(shape) + beta(y).reshape(shape)


def g_norm(train, axis_name, num_classes: int, cond: str):
  """G's BatchNorm factory: () -> (x, y) -> normalised x.

  Class-conditional for cond 'bn' with K > 0; otherwise the family's plain
  BatchNorm (labels ignored, parameter tree of the unconditional model).
  """
  if num_classes and cond == 'bn':
    return lambda: ClassBatchNorm(num_classes, train, axis_name)

  def plain():
    bn = norms.batch_norm(train, axis_name)
    return lambda x, y: bn(x)

  return plain


def d_head(module: nn.Module, phi, y, dense, embed):
  """D's output from features phi (B, F); call inside a compact __call__.

  dense(features) and embed(num, features) build the (spectrally normalised)
  layers. Returns logits (B,), or (logits, class logits (B, K)) for 'acgan'.
  """
  module.sow('intermediates', 'features', phi)
  logits = dense(1)(phi)[:, 0]
  k = module.num_classes
  if not k:
    return logits
  if module.cond == 'acgan':
    return logits, dense(k, name='classifier')(phi)
  v = embed(k, phi.shape[-1], name='class_embedding')(_labels(y, phi.shape[0]))
  return logits + jnp.sum(v * phi, axis=-1)


def split(outputs):
  """D's outputs -> (logits (B,), class logits (B, K) or None)."""
  if isinstance(outputs, tuple):
    return outputs
  return outputs, None
