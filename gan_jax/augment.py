"""Differentiable augmentations of the images D sees, and ADA's p rule.

Two methods (config.augment.method), each a map T of a batch x (B, H, W, C)
in [-1, 1] with per-example keys (B, 2), differentiable in x:
  diffaugment  DiffAugment (Zhao et al. 2020): every op of the policy on
               every image. 'color': brightness x + (u - 1/2), saturation
               (x - mean_c x) 2u + mean_c x (the identity on one channel),
               contrast (x - mean x) (u + 1/2) + mean x, u ~ U(0, 1) per
               image; 'translation': an integer shift of up to 1/8 of the
               side per axis, zero fill; 'cutout': a zeroed square of half
               the side at a uniform centre (mit-han-lab/data-efficient-gans,
               DiffAugment_pytorch.py).
  ada          the adaptive pipeline of Karras et al. 2020 (stylegan2-ada,
               training/augment.py): each op applied with probability p
               (the two rotations with 1 - sqrt(1 - p)): xflip, rotate90,
               xint (integer shift, up to 1/8 of the side), scale (2^N(0,
               0.2^2)), rotate (uniform angle), aniso (2^N(0, 0.2^2) against
               its inverse), xfrac (shift N(0, 0.125^2) of the side), then
               brightness (+N(0, 0.2^2)), contrast (x 2^N(0, 0.5^2)),
               lumaflip (x - 2 mean_c x), saturation (the identity on one
               channel), cutout (half the side). The geometric ops compose
               into one affine map sampled bilinearly with mirrored edges
               (the paper: bicubic after 2x wavelet upsampling); hue is not
               built (the identity on one channel).
ADA's p follows r_t = E[sign D(x_train)], the mean over `interval` D
updates: p <- clip(p + sign(r_t - target) B interval / (kimg 1000), 0, 1)
(`ada_adjust`; the paper's code clamps at 0 only).
"""

import dataclasses

import jax
import jax.numpy as jnp

from gan_jax.errors import ConfigError, check_name

DIFFAUGMENT_OPS = ('color', 'translation', 'cutout')
ADA_OPS = (
  'xflip',
  'rotate90',
  'xint',
  'scale',
  'rotate',
  'aniso',
  'xfrac',
  'brightness',
  'contrast',
  'lumaflip',
  'saturation',
  'cutout',
)
METHODS = ('', 'diffaugment', 'ada')
# Per-example key views: D's real pass, D's fake pass, G's pass, and the
# consistency terms' real and fake transforms.
REAL, FAKE, G_PASS, CR_REAL, CR_FAKE = range(5)


def ops(text: str, allowed, field: str) -> tuple[str, ...]:
  """'a,b' -> ('a', 'b'), each in `allowed`; ConfigError otherwise."""
  names = tuple(filter(None, (s.strip() for s in text.split(','))))
  for name in names:
    check_name(field, name, allowed)
  if not names:
    raise ConfigError(f'{field} is empty; name at least one of {allowed}')
  return names


@dataclasses.dataclass(frozen=True)
class Policy:
  """One transform: method 'diffaugment' or 'ada' with its ops."""

  method: str
  ops: tuple[str, ...]

  def __call__(self, x, keys, p=1.0):
    """T(x): x (B, H, W, C), keys uint32 (B, 2) one per image; p: ADA's
    probability (ignored by DiffAugment)."""
    one = _diffaugment if self.method == 'diffaugment' else _ada
    return jax.vmap(lambda xi, ki: one(self.ops, xi, ki, p))(x, keys)


# method -> (the config.augment field naming its ops, the ops it has)
OPS_FIELD = {
  'diffaugment': ('policy', DIFFAUGMENT_OPS),
  'ada': ('ada_ops', ADA_OPS),
}


def transform_of(aug_config) -> Policy | None:
  """config.augment's transform (None for method ''); ConfigError naming the
  field when its ops are not the method's. The method itself is checked by
  gan_jax.validate."""
  if not aug_config.method:
    return None
  field, allowed = OPS_FIELD[aug_config.method]
  names = ops(aug_config[field], allowed, f'augment.{field}')
  return Policy(aug_config.method, names)


def consistency_of(cons_config) -> Policy | None:
  """config.consistency's transform T (DiffAugment ops), None when both of
  its weights are 0."""
  if cons_config.real <= 0 and cons_config.fake <= 0:
    return None
  names = ops(cons_config.policy, DIFFAUGMENT_OPS, 'consistency.policy')
  return Policy('diffaugment', names)


def view_keys(keys, view: int):
  """The keys (B, 2) of one view of a minibatch's per-example keys."""
  return jax.vmap(lambda k: jax.random.fold_in(k, view))(keys)


def brightness(x, b):
  return x + b


def saturation(x, s):
  """(x - mean over channels) s + mean over channels."""
  mean = jnp.mean(x, axis=-1, keepdims=True)
  return (x - mean) * s + mean


def contrast(x, c):
  """(x - mean of the image) c + mean of the image."""
  mean = jnp.mean(x)
  return (x - mean) * c + mean


def _shift_matrix(n: int, t):
  """(n, n) S with (S v)[i] = v[i + t], 0 where i + t is outside [0, n)."""
  i = jnp.arange(n)
  return (i[:, None] + t == i[None, :]).astype(jnp.float32)


def translate(x, ty, tx):
  """x' [i, j] = x [i + ty, j + tx], zero outside (integer ty, tx): the
  image moves by (-ty, -tx). As matrix products, so gradients are exact."""
  h, w = x.shape[:2]
  sy, sx = _shift_matrix(h, ty), _shift_matrix(w, tx)
  return jnp.einsum('ik,kjc,lj->ilc', sy, x, sx.astype(x.dtype)).astype(x.dtype)


def cutout(x, cy, cx, size: tuple[int, int]):
  """x zeroed on rows [cy - sy//2, cy - sy//2 + sy) and the same columns
  (clipped to the image), (sy, sx) = size."""
  h, w = x.shape[:2]
  rows = jnp.arange(h) - (cy - size[0] // 2)
  cols = jnp.arange(w) - (cx - size[1] // 2)
  inside = ((rows >= 0) & (rows < size[0]))[:, None] & (
    (cols >= 0) & (cols < size[1])
  )[None, :]
  return x * (~inside)[..., None].astype(x.dtype)


def translation_range(side: int) -> int:
  """DiffAugment's largest shift: 1/8 of the side, rounded."""
  return int(side * 0.125 + 0.5)


def cutout_size(side: int) -> int:
  """DiffAugment's cutout side: 1/2 of the side, rounded."""
  return int(side * 0.5 + 0.5)


def _diffaugment(names, x, key, p):
  del p
  h, w = x.shape[:2]
  k = jax.random.split(key, 6)
  if 'color' in names:
    x = brightness(x, jax.random.uniform(k[0]) - 0.5)
    x = saturation(x, jax.random.uniform(k[1]) * 2)
    x = contrast(x, jax.random.uniform(k[2]) + 0.5)
  if 'translation' in names:
    sy, sx = translation_range(h), translation_range(w)
    ty = jax.random.randint(k[3], (), -sy, sy + 1)
    tx = jax.random.randint(jax.random.fold_in(k[3], 1), (), -sx, sx + 1)
    x = translate(x, ty, tx)
  if 'cutout' in names:
    size = cutout_size(h), cutout_size(w)
    cy = jax.random.randint(k[4], (), 0, h + 1 - size[0] % 2)
    cx = jax.random.randint(
      jax.random.fold_in(k[4], 1), (), 0, w + 1 - size[1] % 2
    )
    x = cutout(x, cy, cx, size)
  return x


def _rotation(theta):
  c, s = jnp.cos(theta), jnp.sin(theta)
  return jnp.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _scaling(sx, sy):
  return jnp.diag(jnp.array([sx, sy, 1.0]))


def _translation(tx, ty):
  return jnp.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def warp(x, m):
  """x sampled at m [j, i, 1] of every output pixel (j, i) in coordinates
  centred on the image: bilinear, mirrored beyond the edges. The identity
  matrix returns x exactly."""
  h, w, _ = x.shape
  i, j = jnp.meshgrid(jnp.arange(h), jnp.arange(w), indexing='ij')
  cy, cx = (h - 1) / 2, (w - 1) / 2
  pts = jnp.stack([j - cx, i - cy, jnp.ones_like(i)], 0).reshape(3, -1)
  src = m @ pts.astype(jnp.float32)
  coords = [src[1] + cy, src[0] + cx]
  sample = lambda ch: jax.scipy.ndimage.map_coordinates(  # noqa: E731
    ch, coords, order=1, mode='mirror'
  ).reshape(h, w)
  return jax.vmap(sample, in_axes=-1, out_axes=-1)(x)


def _ada(names, x, key, p):
  h, w, _ = x.shape
  count = iter(range(64))
  draw = lambda f: f(jax.random.fold_in(key, next(count)))  # noqa: E731
  uniform = lambda: draw(jax.random.uniform)  # noqa: E731
  normal = lambda: draw(jax.random.normal)  # noqa: E731
  p_rot = 1 - jnp.sqrt(1 - p)
  geometric = {  # name: (probability, the op's matrix from fresh draws)
    'xflip': (p, lambda: _scaling(1 - 2 * jnp.floor(uniform() * 2), 1.0)),
    'rotate90': (p, lambda: _rotation(-jnp.pi / 2 * jnp.floor(uniform() * 4))),
    'xint': (
      p,
      lambda: _translation(
        jnp.round((uniform() * 2 - 1) * 0.125 * w),
        jnp.round((uniform() * 2 - 1) * 0.125 * h),
      ),
    ),
    'scale': (p, lambda: _scaling(*[jnp.exp2(normal() * 0.2)] * 2)),
    'rotate': (p_rot, lambda: _rotation(-(uniform() * 2 - 1) * jnp.pi)),
    'aniso': (p, lambda: _aniso(jnp.exp2(normal() * 0.2))),
    'xfrac': (
      p,
      lambda: _translation(normal() * 0.125 * w, normal() * 0.125 * h),
    ),
  }
  m = jnp.eye(3)
  order = ('xflip', 'rotate90', 'xint', 'scale', 'rotate', 'aniso', 'rotate')
  for name in (*order, 'xfrac'):  # rotate twice: before and after aniso
    q, matrix = geometric[name]
    on, op = uniform() < q, matrix()
    if name in names:
      m = m @ jnp.where(on, op, jnp.eye(3))
  if any(n in names for n in geometric):
    x = warp(x, m)
  color = {
    'brightness': lambda v: x + v * 0.2,
    'contrast': lambda v: x * jnp.exp2(v * 0.5),  # about 0 of [-1, 1]
    'lumaflip': lambda v: x - 2 * jnp.mean(x, -1, keepdims=True) * (v > 0),
    'saturation': lambda v: saturation(x, jnp.exp2(v)),
  }
  for name, op in color.items():
    on, v = uniform() < p, normal()
    if name in names:
      x = jnp.where(on, op(v), x)
  on, cy, cx = uniform() < p, uniform(), uniform()
  if 'cutout' in names:
    size = cutout_size(h), cutout_size(w)
    cy, cx = (
      jnp.floor(cy * h).astype(jnp.int32),
      jnp.floor(cx * w).astype(jnp.int32),
    )
    x = jnp.where(on, cutout(x, cy, cx, size), x)
  return x


def _aniso(s):
  return _scaling(s, 1 / s)


def ada_step(batch_size: int, interval: int, kimg: float) -> float:
  """How far p moves per adjustment: B interval / (kimg 1000)."""
  return batch_size * interval / (kimg * 1000)


def ada_adjust(p, rt, target: float, step: float):
  """p + sign(r_t - target) step, clipped to [0, 1]."""
  return jnp.clip(p + jnp.sign(rt - target) * step, 0.0, 1.0)
