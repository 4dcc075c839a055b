"""Stride-2 convolution layers written as matrix products (fast on XLA:CPU).

XLA:CPU runs `lax.conv_transpose` and the kernel gradient of strided
convolutions far below its matmul speed. These layers compute the same maps as
`nn.ConvTranspose(f, (k, k), 2, 'SAME')` and `nn.Conv(f, (k, k), 2, 'SAME')`
(even k), with the same parameter names, shapes and initialisers, so
checkpoints and parameter trees look as a user expects:
  UpConv:   y = col2im(x @ K)   one GEMM to all k*k taps, then k*k/4 shifted
            adds per output phase (sub-pixel decomposition);
  DownConv: y = im2col(x) @ K   k*k strided slices, then one GEMM.
Both are differentiated by JAX through GEMMs and slices only.
"""

import flax.linen as nn
import jax.numpy as jnp


class UpConv(nn.Module):
  """Stride-2 'SAME' transposed convolution: (B, H, W, C) -> (B, 2H, 2W, F)."""

  features: int
  kernel_size: int = 4
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    k, f = self.kernel_size, self.features
    if k % 2:
      raise ValueError(f'UpConv needs an even kernel size, got {k}')
    kernel = self.param(
      'kernel', nn.initializers.lecun_normal(), (k, k, x.shape[-1], f)
    )
    b, h, w, _ = x.shape
    # lax.conv_transpose (no kernel transpose) correlates with the kernel on
    # the dilated input; as a scatter that is the flipped kernel: input pixel
    # (i, j) adds x[i, j] @ K[k-1-t, k-1-u] at full-output (2i+t, 2j+u).
    z = jnp.dot(
      x,
      kernel[::-1, ::-1].transpose(2, 0, 1, 3).reshape(x.shape[-1], k * k * f),
    ).reshape(b, h, w, k // 2, 2, k // 2, 2, f)
    # Tap t = 2a + p lands on phase p at row i + a: sum the k/2 x k/2 shifts.
    n = k // 2
    phases = sum(
      jnp.pad(
        z[:, :, :, a, :, c, :, :],
        ((0, 0), (a, n - 1 - a), (c, n - 1 - c), (0, 0), (0, 0), (0, 0)),
      )
      for a in range(n)
      for c in range(n)
    )
    # phases: (B, H+n-1, W+n-1, 2, 2, F) -> interleave rows/cols, crop 'SAME'.
    full = phases.transpose(0, 1, 3, 2, 4, 5).reshape(
      b, 2 * (h + n - 1), 2 * (w + n - 1), f
    )
    lo = n - 1
    y = full[:, lo : lo + 2 * h, lo : lo + 2 * w]
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros_init(), (f,))
    return y


class DownConv(nn.Module):
  """Stride-2 'SAME' convolution: (B, H, W, C) -> (B, H/2, W/2, F), H, W even."""

  features: int
  kernel_size: int = 4
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    k, f = self.kernel_size, self.features
    b, h, w, c = x.shape
    if k % 2 or h % 2 or w % 2:
      raise ValueError(
        f'DownConv needs even kernel and input sizes, got '
        f'kernel {k}, input {h}x{w}'
      )
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (k, k, c, f))
    # 'SAME' at stride 2 pads (k-2)/2 before and k/2 after.
    xp = jnp.pad(
      x, ((0, 0), ((k - 2) // 2, k // 2), ((k - 2) // 2, k // 2), (0, 0))
    )
    ho, wo = h // 2, w // 2
    patches = jnp.stack(
      [
        xp[:, t : t + 2 * ho : 2, u : u + 2 * wo : 2]
        for t in range(k)
        for u in range(k)
      ],
      axis=3,
    )
    y = jnp.dot(patches.reshape(b, ho, wo, k * k * c), kernel.reshape(-1, f))
    if self.use_bias:
      y = y + self.param('bias', nn.initializers.zeros_init(), (f,))
    return y
