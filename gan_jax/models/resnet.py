"""SNGAN ResNet for 32x32 images (Miyato et al. 2018, Appendix B.4, Table 4),
the CIFAR-10 ResNet of Gulrajani et al. 2017.

G (ch = `width`, 256): z -> dense 4x4xch -> 3 x UpBlock(ch) -> BN, ReLU,
  conv3x3 C, tanh; 4 -> 8 -> 16 -> 32.
  UpBlock: y = conv3x3(ReLU(BN(conv3x3(up(ReLU(BN(x))))))) + conv1x1(up(x))
D (ch = `width`, 128): OptimizedBlock(ch) -> ResBlock-down(ch)
  -> 2 x ResBlock(ch) -> ReLU -> sum over H, W -> dense 1 logit.
  OptimizedBlock: y = pool(conv3x3(ReLU(conv3x3(x)))) + conv1x1(pool(x))
  ResBlock: y = [pool](conv3x3(ReLU(N(conv3x3(ReLU(N(x))))))) + s(x),
    s(x) = [pool](conv1x1(x)) when it pools or changes width, else x.
up is nearest-neighbour 2x upsampling, pool 2x2 average pooling; N is D's
`norm` ('none' by default, see norms.normalization), placed before each ReLU
of a block as in Gulrajani et al. 2017. Every conv/dense kernel of D is
spectrally normalised by default. Kernels start Glorot uniform, with gain
sqrt(2) on the 3x3 convs of the blocks, as in the SNGAN code.
With `num_classes` K > 0 both are class-conditional (models.conditional):
G's block BNs are class-conditional ('bn', the final BN stays plain, as in
Miyato & Koyama 2018) or z gets onehot(y) ('concat'); D projects the class
embedding on the pooled features ('projection') or adds a classifier
('acgan').
"""

import functools

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import conditional, norms

# Glorot uniform with gain g has variance g^2 * 2 / (fan_in + fan_out).
_BLOCK_INIT = nn.initializers.variance_scaling(2.0, 'fan_avg', 'uniform')
_GLOROT = nn.initializers.xavier_uniform()


def _conv(features, k, kernel_init=_BLOCK_INIT, use_bias=True):
  return nn.Conv(
    features, (k, k), padding='SAME', kernel_init=kernel_init, use_bias=use_bias
  )


def _up(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)


def _pool(x):
  return nn.avg_pool(x, (2, 2), (2, 2))


class UpBlock(nn.Module):
  """(B, H, W, C_in), labels (B,) -> (B, 2H, 2W, features)."""

  features: int
  num_classes: int = 0
  cond: str = 'bn'
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, y, train: bool):
    bn = conditional.g_norm(train, self.axis_name, self.num_classes, self.cond)
    h = _conv(self.features, 3, use_bias=False)(_up(nn.relu(bn()(x, y))))
    h = _conv(self.features, 3)(nn.relu(bn()(h, y)))
    return h + _conv(self.features, 1, _GLOROT)(_up(x))


class Generator(nn.Module):
  """z (B, z_dim), labels y (B,) -> images (B, 32, 32, C) in [-1, 1]."""

  shape: tuple[int, int, int]
  width: int = 256
  num_classes: int = 0
  cond: str = 'bn'
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z, y=None, train: bool = True):
    conditional.check(self.cond, conditional.G_CONDS, self.num_classes)
    if self.shape[:2] != (32, 32):
      raise ValueError(f'the ResNet G makes 32x32 images, not {self.shape}')
    z = conditional.g_input(z, y, self.num_classes, self.cond)
    x = nn.Dense(4 * 4 * self.width, kernel_init=_GLOROT)(z)
    x = x.reshape(z.shape[0], 4, 4, self.width)
    for _ in range(3):
      x = UpBlock(self.width, self.num_classes, self.cond, self.axis_name)(
        x, y, train
      )
    x = nn.relu(norms.batch_norm(train, self.axis_name)(x))
    return jnp.tanh(_conv(self.shape[2], 3, _GLOROT)(x))


def _spectral(block, train):
  """layer -> layer, spectrally normalised as `block`'s fields say."""
  return functools.partial(
    norms.spectral,
    enabled=block.spectral_norm,
    train=train,
    n_steps=block.power_iterations,
  )


class OptimizedBlock(nn.Module):
  """D's first block: (B, H, W, C_in) -> (B, H/2, W/2, features)."""

  features: int
  spectral_norm: bool = True
  power_iterations: int = 1

  @nn.compact
  def __call__(self, x, train: bool):
    sn = _spectral(self, train)
    h = sn(_conv(self.features, 3))(x)
    h = _pool(sn(_conv(self.features, 3))(nn.relu(h)))
    return h + sn(_conv(self.features, 1, _GLOROT))(_pool(x))


class ResBlock(nn.Module):
  """(B, H, W, C_in) -> (B, H', W', features), H' = H/2 if `down` else H."""

  features: int
  down: bool = False
  norm: str = 'none'
  spectral_norm: bool = True
  power_iterations: int = 1
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, train: bool):
    sn = _spectral(self, train)
    norm = functools.partial(
      norms.normalization, self.norm, train, self.axis_name
    )
    pool = _pool if self.down else lambda y: y
    # A bias before a normalisation with a shift of its own is redundant.
    conv1 = _conv(self.features, 3, use_bias=self.norm == 'none')
    h = sn(conv1)(nn.relu(norm()(x)))
    h = pool(sn(_conv(self.features, 3))(nn.relu(norm()(h))))
    if self.down or x.shape[-1] != self.features:
      x = pool(sn(_conv(self.features, 1, _GLOROT))(x))
    return h + x


class Discriminator(nn.Module):
  """images (B, H, W, C), labels y (B,) -> logits (B,); H, W multiples of 4
  (32 for CIFAR); see conditional.d_head for K > 0."""

  width: int = 128
  norm: str = 'none'
  spectral_norm: bool = True
  power_iterations: int = 1
  num_classes: int = 0
  cond: str = 'projection'
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, y=None, train: bool = True):
    conditional.check(self.cond, conditional.D_CONDS, self.num_classes)
    sn_fields = {
      'spectral_norm': self.spectral_norm,
      'power_iterations': self.power_iterations,
    }
    block = functools.partial(
      ResBlock,
      self.width,
      norm=self.norm,
      axis_name=self.axis_name,
      **sn_fields,
    )
    x = OptimizedBlock(self.width, **sn_fields)(x, train)
    x = block(down=True)(x, train)
    x = block()(block()(x, train), train)
    x = jnp.sum(nn.relu(x), axis=(1, 2))
    sn = _spectral(self, train)
    return conditional.d_head(
      self,
      x,
      y,
      lambda f, **kw: sn(nn.Dense(f, kernel_init=_GLOROT, **kw)),
      lambda k, f, **kw: sn(nn.Embed(k, f, embedding_init=_GLOROT, **kw)),
    )
