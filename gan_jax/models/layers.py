"""Stride-2 convolution layers written as matrix products (fast on XLA:CPU).

XLA:CPU runs `lax.conv_transpose` and the kernel gradient of strided
convolutions far below its matmul speed. These layers compute the same maps as
`nn.ConvTranspose(f, (k, k), 2, 'SAME')` and `nn.Conv(f, (k, k), 2, 'SAME')`
(even k = 2n), with the same parameter names, shapes and initialisers, so
checkpoints and parameter trees look as a user expects.

Both work on the phase grid: an image (B, 2h, 2w, C) is the grid
(B, h, w, 2, 2, C) of its 2 x 2 pixel blocks (space-to-depth), and a k x k
stride-2 kernel is n x n taps T[a, c] between a grid cell and the cell
(a, c) away. Two linear maps on grids carry everything:
  spread(x; T)[i, j] = sum_{a,c} x[i-a, j-c] @ T[a, c]     (B, h+n-1, w+n-1, D)
  gather(u; T)[i, j] = sum_{a,c} u[i+a, j+c] @ T[a, c]^T   (B, h, w, C)
with x (B, h, w, C), u (B, h+n-1, w+n-1, D), T (n, n, C, D). gather is the
transpose of spread in its first argument, so each one's input gradient is
the other, and both have the kernel gradient dT = x^T P(u) (one GEMM over
batch and grid), P(u) (B, h, w, n*n*D) the patches [u[i+a, j+c]]_{a,c}:
  UpConv:   y = crop(depth_to_space(spread(x; T)))  one GEMM to all taps,
            then n^2 shifted adds; backward: P = P(du), du the
            cotangent of spread's output, then dx = P T^T and dT = x^T P
            (two GEMMs sharing P);
  DownConv: y = gather(space_to_depth(pad(x)); T) = P T^T, with P kept for
            dT = dy^T P; backward dx = spread(dy; T).
The VJPs are written out (`jax.custom_vjp`): JAX's own transposes of the
pads and slices build large strided copies (and copies of them transposed
for the kernel GEMM) that XLA:CPU runs slowly. They are reverse-
differentiable again (gradient penalties).
With `form='xla'` the same modules (same parameters) run XLA's own
`lax.conv_transpose` / `lax.conv_general_dilated` instead, which go to cuDNN
on a GPU: a checkpoint restores into either form.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp


def _patches(u, n, h, w):
  """u (B, h+n-1, w+n-1, D) -> (B, h, w, n*n*D): u[i+a, j+c] for a, c < n."""
  return jnp.concatenate(
    [u[:, a : a + h, c : c + w] for a in range(n) for c in range(n)], axis=-1
  )


def _gather_patches(p, taps):
  """p = _patches(u) @ taps^T -> (B, h, w, C); taps (n, n, C, D)."""
  n, _, c, d = taps.shape
  return jnp.dot(p, taps.transpose(0, 1, 3, 2).reshape(n * n * d, c))


def _tap_grad(x, p, n):
  """x (B, h, w, C), p = _patches(u) -> dT (n, n, C, D) with
  dT[a, c] = sum over (B, i, j) of x[i, j]^T u[i+a, j+c]: one GEMM."""
  c = x.shape[-1]
  g = jnp.dot(x.reshape(-1, c).T, p.reshape(-1, p.shape[-1]))
  return g.reshape(c, n, n, -1).transpose(1, 2, 0, 3)


def _varying_like(taps, x):
  """taps, cast to vary over the shard_map axes x varies over.

  A custom VJP must return cotangents typed like its inputs; the kernel
  gradient of per-device data varies over the data axis, so the kernel must
  enter as varying too (JAX then sums its gradient over the axis, as it
  does for any replicated parameter).
  """
  axes = jax.typeof(x).manual_axis_type.varying
  axes = tuple(sorted(axes - jax.typeof(taps).manual_axis_type.varying))
  return jax.lax.pcast(taps, axes, to='varying') if axes else taps


def spread(x, taps):
  """x (B, h, w, C), taps (n, n, C, D) -> (B, h+n-1, w+n-1, D), see above."""
  return _spread(x, _varying_like(taps, x))


def gather(u, taps):
  """u (B, h+n-1, w+n-1, D), taps (n, n, C, D) -> (B, h, w, C), see above."""
  return _gather(u, _varying_like(taps, u))


@jax.custom_vjp
def _spread(x, taps):
  b, h, w, c = x.shape
  n, d = taps.shape[0], taps.shape[-1]
  z = jnp.dot(x, taps.transpose(2, 0, 1, 3).reshape(c, n * n * d))
  z = z.reshape(b, h, w, n, n, d)
  return sum(
    jnp.pad(z[:, :, :, a, e], ((0, 0), (a, n - 1 - a), (e, n - 1 - e), (0, 0)))
    for a in range(n)
    for e in range(n)
  )


@jax.custom_vjp
def _gather(u, taps):
  return _gather_fwd(u, taps)[0]


def _spread_fwd(x, taps):
  return _spread(x, taps), (x, taps)


def _spread_bwd(res, du):
  x, taps = res
  n, (h, w) = taps.shape[0], x.shape[1:3]
  p = _patches(du, n, h, w)
  return _gather_patches(p, taps), _tap_grad(x, p, n)


def _gather_fwd(u, taps):
  n = taps.shape[0]
  p = _patches(u, n, u.shape[1] - n + 1, u.shape[2] - n + 1)
  return _gather_patches(p, taps), (p, taps)


def _gather_bwd(res, dy):
  p, taps = res
  return spread(dy, taps), _tap_grad(dy, p, taps.shape[0])


_spread.defvjp(_spread_fwd, _spread_bwd)
_gather.defvjp(_gather_fwd, _gather_bwd)


def space_to_depth(x):
  """(B, 2h, 2w, C) -> (B, h, w, 4C), channels ordered (row parity, column
  parity, C)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h // 2, w // 2, 4 * c)


def depth_to_space(x):
  """The inverse of space_to_depth: (B, h, w, 4C) -> (B, 2h, 2w, C)."""
  b, h, w, c4 = x.shape
  x = x.reshape(b, h, w, 2, 2, c4 // 4).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, 2 * h, 2 * w, c4 // 4)


def _taps(kernel):
  """(2n, 2n, C, F) kernel -> (n, n, C, 4F): tap row t = 2a + p to T[a, ., p]."""
  k, _, c, f = kernel.shape
  n = k // 2
  t = kernel.reshape(n, 2, n, 2, c, f).transpose(0, 2, 4, 1, 3, 5)
  return t.reshape(n, n, c, 4 * f)


FORMS = ('gemm', 'xla')
_DIMS = ('NHWC', 'HWIO', 'NHWC')


def _with_bias(module, y):
  """y + the module's zero-initialised 'bias' (features,) when use_bias."""
  if module.use_bias:
    y = y + module.param(
      'bias', nn.initializers.zeros_init(), (module.features,)
    )
  return y


class UpConv(nn.Module):
  """Stride-2 'SAME' transposed convolution: (B, H, W, C) -> (B, 2H, 2W, F);
  `form` 'gemm' (matrix products) or 'xla' (lax.conv_transpose)."""

  features: int
  kernel_size: int = 4
  use_bias: bool = True
  form: str = 'gemm'

  @nn.compact
  def __call__(self, x):
    k, f = self.kernel_size, self.features
    if k % 2:
      raise ValueError(f'UpConv needs an even kernel size, got {k}')
    kernel = self.param(
      'kernel', nn.initializers.lecun_normal(), (k, k, x.shape[-1], f)
    )
    _, h, w, _ = x.shape
    if self.form == 'xla':
      y = jax.lax.conv_transpose(x, kernel, (2, 2), 'SAME', None, _DIMS)
      return _with_bias(self, y)
    # lax.conv_transpose (no kernel transpose) correlates with the kernel on
    # the dilated input; as a scatter that is the flipped kernel: input pixel
    # (i, j) adds x[i, j] @ K[k-1-t, k-1-u] at full-output (2i+t, 2j+u), i.e.
    # at grid cell (i+a, j+c), phase (p, q) for t = 2a+p, u = 2c+q.
    full = depth_to_space(spread(x, _taps(kernel[::-1, ::-1])))
    lo = k // 2 - 1  # 'SAME' crops n-1 rows and columns on each side
    return _with_bias(self, full[:, lo : lo + 2 * h, lo : lo + 2 * w])


class DownConv(nn.Module):
  """Stride-2 'SAME' convolution: (B, H, W, C) -> (B, H/2, W/2, F), H, W
  even; `form` 'gemm' (matrix products) or 'xla' (lax.conv_general_dilated)."""

  features: int
  kernel_size: int = 4
  use_bias: bool = True
  form: str = 'gemm'

  @nn.compact
  def __call__(self, x):
    k, f = self.kernel_size, self.features
    _, h, w, c = x.shape
    if k % 2 or h % 2 or w % 2:
      raise ValueError(
        f'DownConv needs even kernel and input sizes, got '
        f'kernel {k}, input {h}x{w}'
      )
    kernel = self.param('kernel', nn.initializers.lecun_normal(), (k, k, c, f))
    if self.form == 'xla':
      y = jax.lax.conv_general_dilated(
        x, kernel, (2, 2), 'SAME', dimension_numbers=_DIMS
      )
      return _with_bias(self, y)
    # 'SAME' at stride 2 pads n-1 before and n after, but no output reads the
    # last padded row or column. Output (i, j) reads the padded input at
    # (2i+t, 2j+u): grid cell (i+a, j+c), phase (p, q).
    lo = k // 2 - 1
    xp = jnp.pad(x, ((0, 0), (lo, lo), (lo, lo), (0, 0)))
    taps = _taps(kernel.transpose(0, 1, 3, 2))  # (n, n, F, 4C)
    return _with_bias(self, gather(space_to_depth(xp), taps))
