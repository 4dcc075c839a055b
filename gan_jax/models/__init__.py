"""Generator/discriminator families, chosen by `config.model.name`.

Every family is a pair of Linen modules built by `build(model_config, shape,
axis_name)`:
  generator(z: (B, z_dim), y: (B,), train) -> images (B, *shape) in [-1, 1]
  discriminator(x: (B, *shape), y: (B,), train) -> logits (B / pack,)
y are class labels, used when `model_config.num_classes` K > 0 (class-
conditional G and D, models.conditional; the D of 'acgan' returns
(logits, class logits (B, K))) and ignored (may be None) when K = 0.
Linen rather than NNX because every step is a pure function of parameter
pytrees: `apply(variables, ..., mutable=['batch_stats'])` is exactly that, and
the same pytrees pass unchanged through shard_map, scan, vmap and Orbax.
BatchNorm statistics are averaged over `axis_name` when called inside
shard_map, so they are those of the global batch. The 'batch_stats'
collection also holds D's spectral-norm power-iteration state (norms.spectral).
Families: 'mlp' (Goodfellow et al. 2014), 'dcgan' (Radford et al. 2016;
28x28 or 32x32), 'resnet' (SNGAN ResNet, Miyato et al. 2018; 32x32).

With `model_config.pack` = m > 1 the discriminator is PacGAN's (Lin et al.
2018): the family's D applied to packs of m samples concatenated along the
last (feature or channel) axis, one logit per pack (`Packed`).
"""

import flax.linen as nn
import jax.numpy as jnp

from gan_jax import config as config_lib, registry
from gan_jax.models import dcgan, mlp, resnet

MODELS = registry.Registry('model')
MODELS.register('dcgan', (dcgan.Generator, dcgan.Discriminator))
MODELS.register('mlp', (mlp.Generator, mlp.Discriminator))
MODELS.register('resnet', (resnet.Generator, resnet.Discriminator))


def pack(x, m: int):
  """(B, *s, C) -> (B/m, *s, m*C): samples mi..mi+m-1 concatenated on C."""
  if m == 1:
    return x
  if x.shape[0] % m:
    raise ValueError(
      f'a batch of {x.shape[0]} does not split into packs of {m}'
    )
  *s, c = x.shape[1:]
  x = jnp.moveaxis(x.reshape(x.shape[0] // m, m, *s, c), 1, -2)
  return x.reshape(x.shape[0], *s, m * c)


def unpack(x, m: int):
  """The inverse of `pack`: (B/m, *s, m*C) -> (B, *s, C)."""
  if m == 1:
    return x
  *s, mc = x.shape[1:]
  x = jnp.moveaxis(x.reshape(x.shape[0], *s, m, mc // m), -2, 1)
  return x.reshape(x.shape[0] * m, *s, mc // m)


class Packed(nn.Module):
  """PacGAN discriminator (Lin et al. 2018): x (B, *shape) -> logits (B/m,).

  `d` sees `pack(x, m)`, so only its first layer grows (m times the input
  features or channels). Its variables are those of `d` itself, not nested
  under a name (`nn.share_scope`), so checkpoints and tools that read D's
  parameter tree see the family's layout.
  """

  d: nn.Module
  pack: int

  def setup(self):
    nn.share_scope(self, self.d)

  def __call__(self, x, y=None, train: bool = True):
    del y  # packs of an unconditional D (config.validate)
    return self.d(pack(x, self.pack), train=train)


def pack_size(d) -> int:
  """Samples per logit of discriminator `d`: its pack, 1 when not Packed."""
  return d.pack if isinstance(d, Packed) else 1


def resolved(model_config) -> dict:
  """{'g': fields, 'd': fields}: the constructor fields of G and D with the
  choices left to the backend made here (DCGAN's `conv: auto` -> 'gemm' on
  CPU, 'xla' elsewhere; dcgan.conv_form)."""
  out = {}
  for net in ('g', 'd'):
    fields = dict(model_config[net])
    if model_config.name == 'dcgan':  # the module's default when unset
      fields['conv'] = dcgan.conv_form(fields.get('conv', dcgan.Generator.conv))
    out[net] = fields
  return out


def build(model_config, shape, axis_name=None):
  """Returns (generator, discriminator) modules for images of `shape`.

  The discriminator is `Packed` when model_config.pack > 1; both are
  class-conditional when model_config.num_classes > 0 (a model config
  without these fields means config.py's defaults). Backend-dependent
  fields are resolved once, here (`resolved`).
  """
  g_cls, d_cls = MODELS[model_config.name]
  fields = resolved(model_config)
  k = model_config.get('num_classes', config_lib.default('model.num_classes'))
  d = d_cls(axis_name=axis_name, num_classes=k, **fields['d'])
  m = model_config.get('pack', config_lib.default('model.pack'))
  if m > 1:
    d = Packed(d, m)
  g = g_cls(
    shape=tuple(shape), axis_name=axis_name, num_classes=k, **fields['g']
  )
  return g, d


def init_variables(g, d, z_dim: int, shape, g_key, d_key):
  """(G's variables, D's variables) initialised on zero inputs: G on one
  z (1, z_dim), D on one pack (pack_size(d), *shape), labels 0."""
  m = pack_size(d)
  y = jnp.zeros((m,), jnp.int32)
  g_vars = g.init(g_key, jnp.zeros((1, z_dim)), y[:1], train=False)
  d_vars = d.init(d_key, jnp.zeros((m, *shape)), y, train=False)
  return g_vars, d_vars
