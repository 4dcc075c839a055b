"""DCGAN (Radford et al. 2016) for 28x28 (MNIST) and 32x32 (CIFAR-10) images.

With n = 2 stride-2 stages for 28x28 (7 -> 14 -> 28) and n = 3 for 32x32
(4 -> 8 -> 16 -> 32), s = side / 2^n, w = `width` (G: 128, D: 64):
G: z -> dense s*s*(2^(n-1) w), BN, ReLU
     -> [up 2^(n-2) w, BN, ReLU] ... [up w, BN, ReLU] -> up C, tanh
D: conv w s2, LReLU(0.2) -> [conv 2w s2, N, LReLU(0.2)] ...
     -> [conv 2^(n-1) w s2, N, LReLU(0.2)] -> dense 1 logit
with 4x4 kernels. N is D's `norm` ('batch', 'layer' or 'none', see
norms.normalization); `spectral_norm` divides every kernel of D by its
largest singular value (Miyato et al. 2018). `conv` picks how stride-2
(transposed) convolutions run: 'gemm' (layers.UpConv/DownConv, fast on CPU)
or 'xla' (XLA's convolutions, cuDNN on GPU): the same layers, map and
parameters. 'auto' (the default) is 'gemm' on CPU and 'xla' on
other backends (`conv_form`).
With `num_classes` K > 0 both are class-conditional (models.conditional):
G by its `cond` ('bn': every BN class-conditional; 'concat'), D by its
`cond` ('projection' on the flattened last features; 'acgan').
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import conditional, layers, norms

STAGES = {28: 2, 32: 3}  # image side -> number of stride-2 stages


def _stages(shape):
  h, w = shape[:2]
  if h != w or h not in STAGES:
    raise ValueError(
      f'DCGAN supports square images of side {sorted(STAGES)}, got {h}x{w}'
    )
  return STAGES[h]


CONVS = ('auto', *layers.FORMS)


def conv_form(conv: str) -> str:
  """The form that runs: 'gemm' or 'xla'; 'auto' is 'gemm' on the CPU
  backend (XLA:CPU's stride-2 convolutions are slow) and 'xla' elsewhere."""
  if conv not in CONVS:
    raise ValueError(f'unknown conv {conv!r}; valid: {", ".join(CONVS)}')
  if conv == 'auto':
    return 'gemm' if jax.default_backend() == 'cpu' else 'xla'
  return conv


def _up(conv, features, use_bias=True):
  return layers.UpConv(features, 4, use_bias, conv_form(conv))


def _down(conv, features, use_bias=True):
  return layers.DownConv(features, 4, use_bias, conv_form(conv))


class Generator(nn.Module):
  """z (B, z_dim), labels y (B,) -> images (B, H, W, C) in [-1, 1], H = W in
  {28, 32}; y is ignored when num_classes = 0."""

  shape: tuple[int, int, int]
  width: int = 128
  conv: str = 'auto'
  num_classes: int = 0
  cond: str = 'bn'
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z, y=None, train: bool = True):
    conditional.check(self.cond, conditional.G_CONDS, self.num_classes)
    n = _stages(self.shape)
    s, c = self.shape[0] >> n, self.shape[2]
    bn = conditional.g_norm(train, self.axis_name, self.num_classes, self.cond)
    z = conditional.g_input(z, y, self.num_classes, self.cond)
    x = nn.Dense(s * s * (self.width << (n - 1)), use_bias=False)(z)
    x = nn.relu(bn()(x, y)).reshape(z.shape[0], s, s, self.width << (n - 1))
    for i in reversed(range(n - 1)):
      x = _up(self.conv, self.width << i, use_bias=False)(x)
      x = nn.relu(bn()(x, y))
    return jnp.tanh(_up(self.conv, c)(x))


class Discriminator(nn.Module):
  """images (B, H, W, C), labels y (B,) -> logits (B,), H = W in {28, 32}
  (see conditional.d_head for K > 0)."""

  width: int = 64
  norm: str = 'batch'
  spectral_norm: bool = False
  power_iterations: int = 1
  conv: str = 'auto'
  num_classes: int = 0
  cond: str = 'projection'
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, y=None, train: bool = True):
    conditional.check(self.cond, conditional.D_CONDS, self.num_classes)
    n = _stages(x.shape[1:])
    sn = functools.partial(
      norms.spectral,
      enabled=self.spectral_norm,
      train=train,
      n_steps=self.power_iterations,
    )
    x = nn.leaky_relu(sn(_down(self.conv, self.width))(x), 0.2)
    for i in range(1, n):
      # A bias before a normalisation with a shift of its own is redundant.
      conv = _down(self.conv, self.width << i, use_bias=self.norm == 'none')
      x = norms.normalization(self.norm, train, self.axis_name)(sn(conv)(x))
      x = nn.leaky_relu(x, 0.2)
    return conditional.d_head(
      self,
      x.reshape(x.shape[0], -1),
      y,
      lambda f, **kw: sn(nn.Dense(f, **kw)),
      lambda k, f, **kw: sn(nn.Embed(k, f, **kw)),
    )
