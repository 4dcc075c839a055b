"""DCGAN (Radford et al. 2016) for 28x28 images, the classic MNIST layout.

G: z -> dense 7x7x(2w), BN, ReLU -> up 14x14xw, BN, ReLU -> up 28x28xC, tanh
D: conv w s2, LReLU(0.2) -> conv 2w s2, BN, LReLU(0.2) -> dense 1 logit
with 4x4 kernels; w is `width` (G: 128, D: 64 by default). `conv` picks how
stride-2 (transposed) convolutions run: 'gemm' (layers.UpConv/DownConv,
fast on CPU) or 'xla' (nn.ConvTranspose/nn.Conv); both are the same map.
"""

import functools

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models import layers


def _batch_norm(train, axis_name):
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=0.9,
    epsilon=1e-5,
    axis_name=axis_name if train else None,
  )


def _up(conv, features, use_bias=True):
  if conv == 'gemm':
    return layers.UpConv(features, 4, use_bias=use_bias)
  return nn.ConvTranspose(features, (4, 4), (2, 2), 'SAME', use_bias=use_bias)


def _down(conv, features, use_bias=True):
  if conv == 'gemm':
    return layers.DownConv(features, 4, use_bias=use_bias)
  return nn.Conv(features, (4, 4), (2, 2), 'SAME', use_bias=use_bias)


class Generator(nn.Module):
  """z (B, z_dim) -> images (B, 28, 28, C) in [-1, 1]."""

  shape: tuple[int, int, int]
  width: int = 128
  conv: str = 'gemm'
  axis_name: str | None = None

  @nn.compact
  def __call__(self, z, train: bool = True):
    h, w, c = self.shape
    bn = functools.partial(_batch_norm, train, self.axis_name)
    x = nn.Dense(h // 4 * w // 4 * 2 * self.width, use_bias=False)(z)
    x = nn.relu(bn()(x)).reshape(z.shape[0], h // 4, w // 4, 2 * self.width)
    x = nn.relu(bn()(_up(self.conv, self.width, use_bias=False)(x)))
    return jnp.tanh(_up(self.conv, c)(x))


class Discriminator(nn.Module):
  """images (B, H, W, C) -> logits (B,)."""

  width: int = 64
  conv: str = 'gemm'
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, train: bool = True):
    x = nn.leaky_relu(_down(self.conv, self.width)(x), 0.2)
    x = _down(self.conv, 2 * self.width, use_bias=False)(x)
    x = nn.leaky_relu(_batch_norm(train, self.axis_name)(x), 0.2)
    return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]
