"""The FID Inception-v3 feature network as pure JAX functions.

This is the Inception-v3 (Szegedy et al. 2016, "Rethinking the Inception
Architecture for Computer Vision") graph "2015-12-05" that the TTUR code of
Heusel et al. (2017, "GANs Trained by a Two Time-Scale Update Rule Converge to
a Local Nash Equilibrium") uses for the Frechet Inception Distance, in the
PyTorch port of the pytorch-fid project (`fid_inception_v3`). It differs from
torchvision's Inception-v3 in its weights, in 1008 output classes, in average
pools that exclude the zero padding from the mean (Mixed_5b-d, 6b-e, 7b) and
in a 3x3 max pool in the pool branch of the last block (Mixed_7c).

Weights: download WEIGHTS_URL (the pytorch-fid state_dict, ~91 MiB), then

  pip install torch
  python -m gan_jax.metrics.inception --convert \\
    pt_inception-2015-12-05-6726825d.pth inception_fid.npz

and set config.eval.inception_path to the .npz. The .npz holds the state_dict
arrays under their torch names and layouts (conv weights OIHW); `features`
converts layouts itself, so no JAX-side conversion step is needed.
"""

import argparse
import functools
import math
import os
import sys
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from gan_jax.errors import InceptionWeightsError

WEIGHTS_URL = (
  'https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/'
  'pt_inception-2015-12-05-6726825d.pth'
)
SIZE = 299  # input resolution of the network
POOL3_DIM = 2048
NUM_CLASSES = 1008
BN_EPS = 1e-3
_BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var')

_HOW_TO = (
  'set config.eval.inception_path to a .npz made by `python -m '
  'gan_jax.metrics.inception --convert '
  f'{os.path.basename(WEIGHTS_URL)} inception_fid.npz` after downloading '
  f'{WEIGHTS_URL} (the convert step needs `pip install torch`)'
)


def _conv(name, cin, cout, kernel, stride=1, padding=0):
  """One conv+BN+ReLU layer: (name, cin, cout, (kh, kw), stride, (ph, pw))."""
  kernel = (kernel, kernel) if isinstance(kernel, int) else kernel
  padding = (padding, padding) if isinstance(padding, int) else padding
  return name, cin, cout, kernel, stride, padding


def _block_a(name, cin, pool_features):
  """Mixed_5b-d: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg pool-1x1 (out 224+pool)."""
  return [
    _conv(f'{name}.branch1x1', cin, 64, 1),
    _conv(f'{name}.branch5x5_1', cin, 48, 1),
    _conv(f'{name}.branch5x5_2', 48, 64, 5, padding=2),
    _conv(f'{name}.branch3x3dbl_1', cin, 64, 1),
    _conv(f'{name}.branch3x3dbl_2', 64, 96, 3, padding=1),
    _conv(f'{name}.branch3x3dbl_3', 96, 96, 3, padding=1),
    _conv(f'{name}.branch_pool', cin, pool_features, 1),
  ]


def _block_b(name, cin):
  """Mixed_6a (35 -> 17): 3x3/2 | 1x1-3x3-3x3/2 | max pool/2 (out 480+cin)."""
  return [
    _conv(f'{name}.branch3x3', cin, 384, 3, stride=2),
    _conv(f'{name}.branch3x3dbl_1', cin, 64, 1),
    _conv(f'{name}.branch3x3dbl_2', 64, 96, 3, padding=1),
    _conv(f'{name}.branch3x3dbl_3', 96, 96, 3, stride=2),
  ]


def _block_c(name, cin, c7):
  """Mixed_6b-e: factorised 7x7 branches (1x7, 7x1), out 4 * 192 = 768."""
  return [
    _conv(f'{name}.branch1x1', cin, 192, 1),
    _conv(f'{name}.branch7x7_1', cin, c7, 1),
    _conv(f'{name}.branch7x7_2', c7, c7, (1, 7), padding=(0, 3)),
    _conv(f'{name}.branch7x7_3', c7, 192, (7, 1), padding=(3, 0)),
    _conv(f'{name}.branch7x7dbl_1', cin, c7, 1),
    _conv(f'{name}.branch7x7dbl_2', c7, c7, (7, 1), padding=(3, 0)),
    _conv(f'{name}.branch7x7dbl_3', c7, c7, (1, 7), padding=(0, 3)),
    _conv(f'{name}.branch7x7dbl_4', c7, c7, (7, 1), padding=(3, 0)),
    _conv(f'{name}.branch7x7dbl_5', c7, 192, (1, 7), padding=(0, 3)),
    _conv(f'{name}.branch_pool', cin, 192, 1),
  ]


def _block_d(name, cin):
  """Mixed_7a (17 -> 8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max pool/2."""
  return [
    _conv(f'{name}.branch3x3_1', cin, 192, 1),
    _conv(f'{name}.branch3x3_2', 192, 320, 3, stride=2),
    _conv(f'{name}.branch7x7x3_1', cin, 192, 1),
    _conv(f'{name}.branch7x7x3_2', 192, 192, (1, 7), padding=(0, 3)),
    _conv(f'{name}.branch7x7x3_3', 192, 192, (7, 1), padding=(3, 0)),
    _conv(f'{name}.branch7x7x3_4', 192, 192, 3, stride=2),
  ]


def _block_e(name, cin):
  """Mixed_7b-c: branches split into 1x3 and 3x1 halves, out 2048."""
  return [
    _conv(f'{name}.branch1x1', cin, 320, 1),
    _conv(f'{name}.branch3x3_1', cin, 384, 1),
    _conv(f'{name}.branch3x3_2a', 384, 384, (1, 3), padding=(0, 1)),
    _conv(f'{name}.branch3x3_2b', 384, 384, (3, 1), padding=(1, 0)),
    _conv(f'{name}.branch3x3dbl_1', cin, 448, 1),
    _conv(f'{name}.branch3x3dbl_2', 448, 384, 3, padding=1),
    _conv(f'{name}.branch3x3dbl_3a', 384, 384, (1, 3), padding=(0, 1)),
    _conv(f'{name}.branch3x3dbl_3b', 384, 384, (3, 1), padding=(1, 0)),
    _conv(f'{name}.branch_pool', cin, 192, 1),
  ]


_LAYERS = {
  layer[0]: layer
  for layer in [
    _conv('Conv2d_1a_3x3', 3, 32, 3, stride=2),
    _conv('Conv2d_2a_3x3', 32, 32, 3),
    _conv('Conv2d_2b_3x3', 32, 64, 3, padding=1),
    _conv('Conv2d_3b_1x1', 64, 80, 1),
    _conv('Conv2d_4a_3x3', 80, 192, 3),
    *_block_a('Mixed_5b', 192, 32),
    *_block_a('Mixed_5c', 256, 64),
    *_block_a('Mixed_5d', 288, 64),
    *_block_b('Mixed_6a', 288),
    *_block_c('Mixed_6b', 768, 128),
    *_block_c('Mixed_6c', 768, 160),
    *_block_c('Mixed_6d', 768, 160),
    *_block_c('Mixed_6e', 768, 192),
    *_block_d('Mixed_7a', 768),
    *_block_e('Mixed_7b', 1280),
    *_block_e('Mixed_7c', 2048),
  ]
}


def param_shapes() -> dict[str, tuple[int, ...]]:
  """Every array of the pytorch-fid FID Inception state_dict, torch layout.

  Per conv layer `L`: 'L.conv.weight' (out, in, kh, kw) (no conv bias) and
  'L.bn.{weight,bias,running_mean,running_var}' (out,); then 'fc.weight'
  (1008, 2048) and 'fc.bias' (1008,). BatchNorm's 'num_batches_tracked'
  counters are not included.
  """
  shapes = {}
  for name, cin, cout, (kh, kw), _, _ in _LAYERS.values():
    shapes[f'{name}.conv.weight'] = (cout, cin, kh, kw)
    for k in _BN_KEYS:
      shapes[f'{name}.bn.{k}'] = (cout,)
  shapes['fc.weight'] = (NUM_CLASSES, POOL3_DIM)
  shapes['fc.bias'] = (NUM_CLASSES,)
  return shapes


def init_params(key) -> dict[str, np.ndarray]:
  """Random float32 weights of `param_shapes()` (tests and plumbing only).

  From one standard normal draw z per entry: conv weights z * sqrt(2 / fan_in)
  (He et al. 2015), BN gamma 1 + 0.1 z, beta and running mean 0.1 z, running
  variance exp(0.2 z) > 0, fc weight z / sqrt(2048), fc bias 0.1 z.
  """
  shapes = param_shapes()
  sizes = [math.prod(s) for s in shapes.values()]
  z = np.asarray(jax.random.normal(key, (sum(sizes),), jnp.float32))
  params = {}
  offset = 0
  for (name, shape), size in zip(shapes.items(), sizes):
    v = z[offset : offset + size].reshape(shape)
    offset += size
    if name.endswith('conv.weight'):
      v = v * np.sqrt(2.0 / math.prod(shape[1:]))
    elif name.endswith('bn.weight'):
      v = 1.0 + 0.1 * v
    elif name.endswith('running_var'):
      v = np.exp(0.2 * v)
    elif name == 'fc.weight':
      v = v / np.sqrt(POOL3_DIM)
    else:  # BN beta, running mean, fc bias
      v = 0.1 * v
    params[name] = v.astype(np.float32)
  return params


def _check_shapes(shapes, source):
  """Raises InceptionWeightsError unless `shapes` equals `param_shapes()`."""
  want = param_shapes()
  missing = [k for k in want if k not in shapes]
  unexpected = [k for k in shapes if k not in want]
  wrong = [
    f'{k} {tuple(shapes[k])} (want {want[k]})'
    for k in want
    if k in shapes and tuple(shapes[k]) != want[k]
  ]
  problems = [
    f'{what} ({len(keys)}): {", ".join(keys[:5])}'
    + (', ...' if len(keys) > 5 else '')
    for what, keys in [
      ('missing keys', missing),
      ('unexpected keys', unexpected),
      ('wrong shapes', wrong),
    ]
    if keys
  ]
  if problems:
    raise InceptionWeightsError(
      f'{source} does not hold the FID Inception weights: '
      + '; '.join(problems)
      + f'. Fix: {_HOW_TO}.'
    )


def check_path(path: str | None) -> str:
  """`path` with ~ expanded; InceptionWeightsError if it is None or no file."""
  if path is None:
    raise InceptionWeightsError(
      f'No FID Inception weights given (config.eval.inception_path is None): '
      f'{_HOW_TO}.'
    )
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise InceptionWeightsError(
      f'No FID Inception weights at {path}: {_HOW_TO}.'
    )
  return path


def load_params(path: str | None) -> dict[str, jax.Array]:
  """Reads the FID Inception weights from an .npz made by `--convert`.

  Returns {torch state_dict name: float32 array}, checked against
  `param_shapes()`. Raises InceptionWeightsError if `path` is None, missing,
  unreadable or holds other arrays.
  """
  path = check_path(path)
  try:
    with np.load(path, allow_pickle=False) as npz:
      arrays = {k: npz[k] for k in npz.files}
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise InceptionWeightsError(
      f'Cannot read {path} as .npz ({e}): {_HOW_TO}.'
    ) from e
  _check_shapes({k: v.shape for k, v in arrays.items()}, path)
  return {k: jnp.asarray(v, jnp.float32) for k, v in arrays.items()}


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
  """(n_out, n_in) float32 weights of torch's 1-D bilinear resize.

  align_corners=False, no antialiasing: output i samples the input at
  s = max((i + 1/2) n_in / n_out - 1/2, 0), with weight 1 - (s - floor(s)) on
  floor(s) and s - floor(s) on floor(s) + 1, indices clamped to n_in - 1.
  Computed in float64 at trace time (the shapes are static).
  """
  s = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0.0)
  i0 = np.minimum(np.floor(s).astype(np.int64), n_in - 1)
  i1 = np.minimum(i0 + 1, n_in - 1)
  frac = s - i0
  w = np.zeros((n_out, n_in))
  np.add.at(w, (np.arange(n_out), i0), 1.0 - frac)
  np.add.at(w, (np.arange(n_out), i1), frac)
  return w.astype(np.float32)


def resize(images: jax.Array, size: int = SIZE) -> jax.Array:
  """Bilinear resize of (N, H, W, C) to (N, size, size, C), torch convention.

  torch `F.interpolate(mode='bilinear', align_corners=False)` (no
  antialiasing), as pytorch-fid applies it, for up- and downsampling alike:
  out = A_H x A_W^T per image and channel, A = `_bilinear_matrix`. torch and
  jax.image.resize(antialias=False) use the same formula but compute the
  sample positions in float32, ~1e-7 H pixel widths off: their outputs differ
  from this exact one by up to ~2e-4 on N(0, 1) pixels at 410 -> 299.
  """
  _, h, w, _ = images.shape
  hi = lax.Precision.HIGHEST
  x = jnp.einsum(
    'ih,nhwc->niwc', _bilinear_matrix(h, size), images, precision=hi
  )
  return jnp.einsum('jw,niwc->nijc', _bilinear_matrix(w, size), x, precision=hi)


def _conv_bn_relu(params, name, x):
  """relu(BN(conv(x))) of layer `name`; x (N, H, W, Cin) -> (N, H', W', Cout).

  BN in inference mode: gamma (y - mean) / sqrt(var + 1e-3) + beta.
  """
  _, _, _, _, stride, (ph, pw) = _LAYERS[name]
  w = params[f'{name}.conv.weight'].transpose(2, 3, 1, 0)  # OIHW -> HWIO
  y = lax.conv_general_dilated(
    x,
    w,
    window_strides=(stride, stride),
    padding=((ph, ph), (pw, pw)),
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
    precision=lax.Precision.HIGHEST,
  )
  scale = params[f'{name}.bn.weight'] * lax.rsqrt(
    params[f'{name}.bn.running_var'] + BN_EPS
  )
  shift = params[f'{name}.bn.bias'] - params[f'{name}.bn.running_mean'] * scale
  return jax.nn.relu(y * scale + shift)


def _block_layer(params, block, layer, x):
  """_conv_bn_relu of layer `block.layer`, e.g. 'Mixed_5b' 'branch1x1'."""
  return _conv_bn_relu(params, f'{block}.{layer}', x)


def _max_pool(x, stride, padding):
  """3x3 max pool; padded positions never win (they are -inf)."""
  pad = ((0, 0), (padding, padding), (padding, padding), (0, 0))
  return lax.reduce_window(
    x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, stride, stride, 1), pad
  )


def _avg_pool_same(x):
  """3x3 stride-1 average pool over the in-image pixels only.

  torch avg_pool2d(padding=1, count_include_pad=False), i.e. TF's 'SAME'
  average pool: the sum over the window divided by the number of pixels in it
  that lie inside the image (4 at corners, 6 at edges, 9 inside).
  """
  pad = ((0, 0), (1, 1), (1, 1), (0, 0))
  window = (1, 3, 3, 1)
  total = lax.reduce_window(x, 0.0, lax.add, window, (1, 1, 1, 1), pad)
  ones = jnp.ones((1, *x.shape[1:3], 1), x.dtype)
  count = lax.reduce_window(ones, 0.0, lax.add, window, (1, 1, 1, 1), pad)
  return total / count


def _mixed_a(params, name, x):
  p = functools.partial(_block_layer, params, name)
  b5 = p('branch5x5_2', p('branch5x5_1', x))
  b3 = p('branch3x3dbl_1', x)
  b3 = p('branch3x3dbl_3', p('branch3x3dbl_2', b3))
  bp = p('branch_pool', _avg_pool_same(x))
  return jnp.concatenate([p('branch1x1', x), b5, b3, bp], axis=-1)


def _mixed_b(params, name, x):
  p = functools.partial(_block_layer, params, name)
  b3 = p('branch3x3dbl_1', x)
  b3 = p('branch3x3dbl_3', p('branch3x3dbl_2', b3))
  bp = _max_pool(x, stride=2, padding=0)
  return jnp.concatenate([p('branch3x3', x), b3, bp], axis=-1)


def _mixed_c(params, name, x):
  p = functools.partial(_block_layer, params, name)
  b7 = x
  for i in (1, 2, 3):
    b7 = p(f'branch7x7_{i}', b7)
  b7d = x
  for i in (1, 2, 3, 4, 5):
    b7d = p(f'branch7x7dbl_{i}', b7d)
  bp = p('branch_pool', _avg_pool_same(x))
  return jnp.concatenate([p('branch1x1', x), b7, b7d, bp], axis=-1)


def _mixed_d(params, name, x):
  p = functools.partial(_block_layer, params, name)
  b3 = p('branch3x3_2', p('branch3x3_1', x))
  b7 = x
  for i in (1, 2, 3, 4):
    b7 = p(f'branch7x7x3_{i}', b7)
  bp = _max_pool(x, stride=2, padding=0)
  return jnp.concatenate([b3, b7, bp], axis=-1)


def _mixed_e(params, name, x, max_pool):
  """Mixed_7b (average pool branch) or, max_pool=True, Mixed_7c."""
  p = functools.partial(_block_layer, params, name)
  b3 = p('branch3x3_1', x)
  b3 = jnp.concatenate([p('branch3x3_2a', b3), p('branch3x3_2b', b3)], -1)
  b3d = p('branch3x3dbl_2', p('branch3x3dbl_1', x))
  b3d = jnp.concatenate(
    [p('branch3x3dbl_3a', b3d), p('branch3x3dbl_3b', b3d)], -1
  )
  pooled = _max_pool(x, 1, 1) if max_pool else _avg_pool_same(x)
  bp = p('branch_pool', pooled)
  return jnp.concatenate([p('branch1x1', x), b3, b3d, bp], axis=-1)


def features(params, images) -> tuple[jax.Array, jax.Array]:
  """FID Inception pool3 features and class probabilities of `images`.

  images: float (N, H, W, C) in [-1, 1], C = 3 or 1 (grey, tiled to 3), any
  H, W; resized to 299x299 as `resize`. Returns (pool3 (N, 2048) float32, the
  global mean of Mixed_7c's ReLU output, so >= 0; softmax(pool3 W^T + b)
  (N, 1008) float32, the class probabilities used by the Inception Score).
  Matches pytorch-fid's `InceptionV3([3])` on (images + 1) / 2. Convolutions
  and matmuls run at Precision.HIGHEST (full float32 even where the default
  would be TF32/bfloat16). Jittable; `params` as from `load_params`.
  """
  x = jnp.asarray(images, jnp.float32)
  if x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise ValueError(f'images must be (N, H, W, 1 or 3), got {x.shape}')
  if x.shape[-1] == 1:
    x = jnp.tile(x, (1, 1, 1, 3))
  x = resize(x)
  for name in ('Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3'):
    x = _conv_bn_relu(params, name, x)
  x = _max_pool(x, stride=2, padding=0)  # 147 -> 73
  x = _conv_bn_relu(params, 'Conv2d_3b_1x1', x)
  x = _conv_bn_relu(params, 'Conv2d_4a_3x3', x)
  x = _max_pool(x, stride=2, padding=0)  # 71 -> 35
  for name in ('Mixed_5b', 'Mixed_5c', 'Mixed_5d'):
    x = _mixed_a(params, name, x)
  x = _mixed_b(params, 'Mixed_6a', x)  # 35 -> 17
  for name in ('Mixed_6b', 'Mixed_6c', 'Mixed_6d', 'Mixed_6e'):
    x = _mixed_c(params, name, x)
  x = _mixed_d(params, 'Mixed_7a', x)  # 17 -> 8
  x = _mixed_e(params, 'Mixed_7b', x, max_pool=False)
  x = _mixed_e(params, 'Mixed_7c', x, max_pool=True)
  pool3 = jnp.mean(x, axis=(1, 2))
  logits = (
    jnp.matmul(pool3, params['fc.weight'].T, precision=lax.Precision.HIGHEST)
    + params['fc.bias']
  )
  return pool3, jax.nn.softmax(logits, axis=-1)


class _Parser(argparse.ArgumentParser):
  """argparse, where a bad command line ends in one line, not two."""

  def error(self, message):
    sys.exit(f'error: {message}')


def main(argv=None):
  """`python -m gan_jax.metrics.inception --convert IN.pth OUT.npz`.

  Loads the pytorch-fid state_dict (torch.load, weights_only=True), drops the
  BatchNorm 'num_batches_tracked' counters, checks the names and shapes
  against `param_shapes()` and writes the float32 arrays with np.savez.
  """
  parser = _Parser(
    prog='python -m gan_jax.metrics.inception',
    description='Convert the pytorch-fid FID Inception weights '
    f'({WEIGHTS_URL}) to the .npz that config.eval.inception_path names.',
  )
  parser.add_argument(
    '--convert',
    nargs=2,
    metavar=('IN.pth', 'OUT.npz'),
    help='the downloaded .pth state_dict and the .npz to write',
  )
  args, unknown = parser.parse_known_args(argv)
  if unknown:  # before a missing --convert, which argparse reports first
    parser.error(f'unknown argument(s) {" ".join(unknown)}; valid: --convert')
  if args.convert is None:
    parser.error('missing required flag --convert IN.pth OUT.npz')
  src, dst = args.convert
  if not os.path.isfile(src):
    parser.error(f'{src} not found: download it from {WEIGHTS_URL}')
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise SystemExit(
      'error: the --convert step reads a PyTorch file and needs torch: '
      '`pip install torch` (the CPU build is enough).'
    ) from e
  state = torch.load(src, map_location='cpu', weights_only=True)
  arrays = {
    k: v.detach().float().numpy()
    for k, v in state.items()
    if not k.endswith('num_batches_tracked')
  }
  _check_shapes({k: v.shape for k, v in arrays.items()}, src)
  np.savez(dst, **arrays)
  print(
    f'Wrote {len(arrays)} arrays to {dst}; set config.eval.inception_path={dst}'
  )


if __name__ == '__main__':
  main(sys.argv[1:])


def check_config(config) -> None:
  """The 'inception' feature network's check: its weights file exists."""
  check_path(config.eval.inception_path)


def load_features(ev):
  """The 'inception' feature network: FID Inception-v3 pool3 features and
  class probabilities from config.eval.inception_path."""
  path = ev.config.eval.inception_path
  params = load_params(path)
  fn = jax.jit(lambda x: features(params, x))
  return fn, f'FID Inception-v3 pool3 ({os.path.basename(path)})'
