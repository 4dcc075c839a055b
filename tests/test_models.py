"""The model families: shapes, parameter layout, normalisations.

- Shapes: every family maps z (B, z_dim) to images (B, *shape) in [-1, 1]
  and images to logits (B,), in train and eval mode; unsupported image sizes
  raise ValueError.
- DCGAN 28x28: the parameter and statistics tree is exactly the MNIST
  layout (checkpoints depend on it).
- Spectral normalisation (Miyato et al. 2018): after 50 train-mode applies
  (50 power iterations), every kernel W of D, reshaped to (-1, C_out), has
  sigma_max(W / sigma) = 1 within 1e-2 for the stored sigma (singular values
  from jnp.linalg.svd), while sigma_max(W) is not 1 (kernels are scaled by 3
  first, so the check is not vacuous); D's logits equal those of the same D
  without spectral norm and with every kernel divided by its sigma.
- Maxout (Goodfellow et al. 2013): the MLP discriminator with `pieces=k`
  gives the logits of a float64 hand computation in which hidden unit j is
  the max over its k linear pieces (columns j*k .. j*k+k-1); with k=1 it
  is the LReLU(0.2) MLP, with the same parameter tree.
- Per-example critics (Gulrajani et al. 2017): with layer norm or no norm,
  changing example 0 of a batch leaves the train-mode logits of examples
  1..B-1 unchanged; with BatchNorm it changes them.
"""

import functools

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import models

Z_DIM = 8
B = 4

FAMILIES = {  # id -> (model name, image shape, g fields, d fields)
  'mlp_28x28x1': ('mlp', (28, 28, 1), {'hidden': (16,)}, {'hidden': (16,)}),
  'mlp_maxout_28x28x1': (
    'mlp',
    (28, 28, 1),
    {'hidden': (16,)},
    {'hidden': (16, 16), 'pieces': 3, 'dropout': 0.5},
  ),
  'dcgan_28x28x1': ('dcgan', (28, 28, 1), {'width': 4}, {'width': 4}),
  'dcgan_32x32x3': ('dcgan', (32, 32, 3), {'width': 4}, {'width': 4}),
  'dcgan_32x32x3_xla': (
    'dcgan',
    (32, 32, 3),
    {'width': 4, 'conv': 'xla'},
    {'width': 4, 'conv': 'xla'},
  ),
  'resnet_32x32x3': ('resnet', (32, 32, 3), {'width': 4}, {'width': 4}),
}


def _build(name, shape, g_fields=None, d_fields=None):
  config = ml_collections.ConfigDict(
    {'name': name, 'z_dim': Z_DIM, 'g': g_fields or {}, 'd': d_fields or {}}
  )
  return models.build(config, shape)


def _init_shapes(module, x):
  """Shapes of module.init's variables, by tracing only."""
  variables = jax.eval_shape(
    functools.partial(module.init, train=False), jax.random.PRNGKey(0), x
  )
  return jax.tree.map(lambda v: v.shape, variables)


def _images(shape, seed=0):
  return jax.random.uniform(
    jax.random.PRNGKey(seed), (B, *shape), minval=-1.0, maxval=1.0
  )


@pytest.mark.parametrize('family', sorted(FAMILIES))
def test_shapes_and_range(family):
  name, shape, g_fields, d_fields = FAMILIES[family]
  g, d = _build(name, shape, g_fields, d_fields)
  k_g, k_d, k_z, k_drop = jax.random.split(jax.random.PRNGKey(0), 4)
  z = jax.random.normal(k_z, (B, Z_DIM))

  @jax.jit
  def run(z, x):
    g_vars = g.init(k_g, z, train=False)
    d_vars = d.init(k_d, x, train=False)
    out = {}
    for train in (True, False):
      images, _ = g.apply(g_vars, z, train=train, mutable=['batch_stats'])
      logits, _ = d.apply(
        d_vars,
        images,
        train=train,
        mutable=['batch_stats'],
        rngs={'dropout': k_drop},
      )
      out[train] = images, logits
    return out

  for images, logits in run(z, _images(shape)).values():
    assert images.shape == (B, *shape)
    assert np.all(np.abs(images) <= 1)
    assert logits.shape == (B,)
    assert np.all(np.isfinite(logits))


@pytest.mark.parametrize(
  'name, shape', [('dcgan', (64, 64, 3)), ('dcgan', (32, 28, 1))]
)
def test_dcgan_rejects_other_sizes(name, shape):
  g, d = _build(name, shape)
  with pytest.raises(ValueError, match='DCGAN supports'):
    _init_shapes(g, jnp.zeros((1, Z_DIM)))
  with pytest.raises(ValueError, match='DCGAN supports'):
    _init_shapes(d, jnp.zeros((1, *shape)))


def test_resnet_rejects_other_sizes():
  g, _ = _build('resnet', (28, 28, 1))
  with pytest.raises(ValueError, match='32x32'):
    _init_shapes(g, jnp.zeros((1, Z_DIM)))


def test_unknown_norm_raises():
  _, d = _build('dcgan', (28, 28, 1), d_fields={'norm': 'group'})
  with pytest.raises(ValueError, match='unknown norm'):
    _init_shapes(d, jnp.zeros((1, 28, 28, 1)))


def test_dcgan_28x28_parameter_tree():
  w_g, w_d, c = 8, 4, 1
  g, d = _build('dcgan', (28, 28, c), {'width': w_g}, {'width': w_d})
  g_vars = _init_shapes(g, jnp.zeros((1, Z_DIM)))
  d_vars = _init_shapes(d, jnp.zeros((1, 28, 28, c)))
  dense = 7 * 7 * 2 * w_g
  assert g_vars == {
    'params': {
      'Dense_0': {'kernel': (Z_DIM, dense)},
      'BatchNorm_0': {'scale': (dense,), 'bias': (dense,)},
      'UpConv_0': {'kernel': (4, 4, 2 * w_g, w_g)},
      'BatchNorm_1': {'scale': (w_g,), 'bias': (w_g,)},
      'UpConv_1': {'kernel': (4, 4, w_g, c), 'bias': (c,)},
    },
    'batch_stats': {
      'BatchNorm_0': {'mean': (dense,), 'var': (dense,)},
      'BatchNorm_1': {'mean': (w_g,), 'var': (w_g,)},
    },
  }
  assert d_vars == {
    'params': {
      'DownConv_0': {'kernel': (4, 4, c, w_d), 'bias': (w_d,)},
      'DownConv_1': {'kernel': (4, 4, w_d, 2 * w_d)},
      'BatchNorm_0': {'scale': (2 * w_d,), 'bias': (2 * w_d,)},
      'Dense_0': {'kernel': (7 * 7 * 2 * w_d, 1), 'bias': (1,)},
    },
    'batch_stats': {'BatchNorm_0': {'mean': (2 * w_d,), 'var': (2 * w_d,)}},
  }


SN_CASES = {  # id -> (model name, image shape, d fields)
  'dcgan_28_batch': ('dcgan', (28, 28, 1), {'width': 4, 'norm': 'batch'}),
  'dcgan_32_none': ('dcgan', (32, 32, 3), {'width': 4, 'norm': 'none'}),
  'resnet_32': ('resnet', (32, 32, 3), {'width': 4}),
}


def _sigmas(stats):
  """{params path of a kernel: its stored sigma} from 'batch_stats'.

  SpectralNorm stores '<layer>/kernel/sigma' under a SpectralNorm_i sibling
  of <layer>: (..., 'SpectralNorm_i', 'Conv_0/kernel/sigma') is the sigma of
  params (..., 'Conv_0', 'kernel').
  """
  return {
    path[:-2] + tuple(path[-1].split('/')[:-1]): v
    for path, v in flax.traverse_util.flatten_dict(stats).items()
    if path[-1].endswith('/sigma')
  }


def _sigma_max(w):
  return float(jnp.linalg.svd(w.reshape(-1, w.shape[-1]), compute_uv=False)[0])


@pytest.mark.parametrize('case', sorted(SN_CASES))
def test_spectral_norm_normalises_every_kernel(case):
  name, shape, d_fields = SN_CASES[case]
  _, d = _build(name, shape, d_fields={**d_fields, 'spectral_norm': True})
  _, d_plain = _build(
    name, shape, d_fields={**d_fields, 'spectral_norm': False}
  )
  x = _images(shape)
  variables = d.init(jax.random.PRNGKey(1), x, train=False)
  # The parameter tree is the bare D's: spectral norm only adds statistics.
  assert (
    jax.tree.map(jnp.shape, variables['params'])
    == _init_shapes(d_plain, x)['params']
  )
  params = jax.tree.map(lambda p: 3 * p, variables['params'])

  def step(_, stats):
    _, new = d.apply(
      {'params': params, 'batch_stats': stats},
      x,
      train=True,
      mutable=['batch_stats'],
    )
    return new['batch_stats']

  stats = jax.jit(lambda s: jax.lax.fori_loop(0, 50, step, s))(
    variables['batch_stats']
  )
  # Eval mode computes sigma but does not store it.
  logits, unchanged = d.apply(
    {'params': params, 'batch_stats': stats},
    x,
    train=False,
    mutable=['batch_stats'],
  )
  assert jax.tree.all(
    jax.tree.map(np.array_equal, unchanged['batch_stats'], stats)
  )

  sigmas = _sigmas(stats)
  flat = flax.traverse_util.flatten_dict(params)
  assert set(sigmas) == {p for p in flat if p[-1] == 'kernel'}
  for path, sigma in sigmas.items():
    w = flat[path]
    assert abs(_sigma_max(w) - 1) > 0.1, path
    assert abs(_sigma_max(w / sigma) - 1) < 1e-2, (path, _sigma_max(w / sigma))

  # D's forward uses W / sigma: the plain D with normalised kernels agrees.
  normalised = flax.traverse_util.unflatten_dict(
    {p: v / sigmas[p] if p in sigmas else v for p, v in flat.items()}
  )
  plain_stats = flax.traverse_util.unflatten_dict(
    {
      p: v
      for p, v in flax.traverse_util.flatten_dict(stats).items()
      if not any(k.startswith('SpectralNorm_') for k in p)
    }
  )
  np.testing.assert_allclose(
    logits,
    d_plain.apply(
      {'params': normalised, 'batch_stats': plain_stats}, x, train=False
    ),
    rtol=1e-4,
    atol=1e-5,
  )


@pytest.mark.parametrize('pieces', [1, 5])
def test_mlp_maxout_matches_hand_computation(pieces):
  hidden = (6, 4)
  shape = (28, 28, 1)
  _, d = _build('mlp', shape, d_fields={'hidden': hidden, 'pieces': pieces})
  x = _images(shape)
  variables = d.init(jax.random.PRNGKey(0), x, train=False)
  params = jax.tree.map(lambda a: np.asarray(a, np.float64), variables)
  params = params['params']
  widths = [28 * 28, *hidden]
  assert jax.tree.map(np.shape, params) == {
    **{
      f'Dense_{i}': {'kernel': (widths[i], h * pieces), 'bias': (h * pieces,)}
      for i, h in enumerate(hidden)
    },
    f'Dense_{len(hidden)}': {'kernel': (hidden[-1], 1), 'bias': (1,)},
  }
  h = np.asarray(x, np.float64).reshape(B, -1)
  winners = set()
  for i, units in enumerate(hidden):
    layer = params[f'Dense_{i}']
    linear = h @ layer['kernel'] + layer['bias']  # (B, units * pieces)
    if pieces == 1:
      h = np.where(linear > 0, linear, 0.2 * linear)
      continue
    unit_pieces = [
      linear[:, j * pieces : (j + 1) * pieces] for j in range(units)
    ]
    h = np.stack([p.max(axis=1) for p in unit_pieces], axis=1)
    winners |= {int(k) for p in unit_pieces for k in p.argmax(axis=1)}
  out = params[f'Dense_{len(hidden)}']
  expected = (h @ out['kernel'] + out['bias'])[:, 0]
  logits = jax.jit(lambda v, y: d.apply(v, y, train=False))(variables, x)
  np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-5, atol=1e-5)
  if pieces > 1:  # different pieces win for different units: not vacuous
    assert len(winners) > 1, winners


def test_mlp_maxout_rejects_zero_pieces():
  _, d = _build('mlp', (28, 28, 1), d_fields={'pieces': 0})
  with pytest.raises(ValueError, match='pieces must be >= 1'):
    _init_shapes(d, jnp.zeros((1, 28, 28, 1)))


PER_EXAMPLE_CASES = [
  ('dcgan', 'layer', True),
  ('dcgan', 'none', True),
  ('dcgan', 'batch', False),
  ('resnet', 'layer', True),
  ('resnet', 'none', True),
  ('resnet', 'batch', False),
]


@pytest.mark.parametrize('name, norm, per_example', PER_EXAMPLE_CASES)
def test_per_example_critic(name, norm, per_example):
  shape = (32, 32, 3)
  _, d = _build(name, shape, d_fields={'width': 4, 'norm': norm})
  x = _images(shape)
  x_changed = x.at[0].set(_images(shape, seed=1)[0])
  variables = d.init(jax.random.PRNGKey(0), x, train=False)
  logits = jax.jit(
    lambda y: d.apply(variables, y, train=True, mutable=['batch_stats'])[0]
  )
  before, after = logits(x), logits(x_changed)
  assert abs(float(before[0] - after[0])) > 1e-4  # the change reaches D
  others = np.abs(np.asarray(before[1:] - after[1:])).max()
  if per_example:
    assert others <= 1e-6 * (1 + np.abs(before[1:]).max()), others
  else:
    assert others > 1e-4, others


@pytest.mark.parametrize(
  'backend, form', [('cpu', 'gemm'), ('gpu', 'xla'), ('tpu', 'xla')]
)
def test_conv_auto_resolves_by_backend(monkeypatch, backend, form):
  monkeypatch.setattr(jax, 'default_backend', lambda: backend)
  config = ml_collections.ConfigDict(
    {'name': 'dcgan', 'z_dim': Z_DIM, 'g': {'width': 4}, 'd': {'width': 4}}
  )
  assert models.resolved(config) == {
    'g': {'width': 4, 'conv': form},
    'd': {'width': 4, 'conv': form},
  }
  g, d = models.build(config, (28, 28, 1))
  assert g.conv == d.conv == form
  config.g.conv = 'gemm'  # an explicit form is kept on every backend
  assert models.resolved(config)['g']['conv'] == 'gemm'


@pytest.mark.parametrize('shape', [(28, 28, 1), (32, 32, 3)])
def test_conv_forms_are_the_same_model(shape):
  """'gemm' and 'xla' DCGANs share parameters and give the same outputs."""
  nets = {
    conv: _build(
      'dcgan', shape, {'width': 4, 'conv': conv}, {'width': 4, 'conv': conv}
    )
    for conv in ('gemm', 'xla')
  }
  (g, d), (g_x, d_x) = nets['gemm'], nets['xla']
  key = jax.random.PRNGKey(0)
  g_vars, d_vars = models.init_variables(g, d, Z_DIM, shape, key, key)
  z = jax.random.normal(key, (B, Z_DIM))
  images = _images(shape)
  for train in (False, True):
    kw = {'train': train, 'mutable': ['batch_stats'] if train else False}
    out = g.apply(g_vars, z, **kw)
    out_x = g_x.apply(g_vars, z, **kw)
    np.testing.assert_allclose(
      jax.tree.leaves(out)[0], jax.tree.leaves(out_x)[0], atol=1e-5
    )
    out = d.apply(d_vars, images, **kw)
    out_x = d_x.apply(d_vars, images, **kw)
    np.testing.assert_allclose(
      jax.tree.leaves(out)[0], jax.tree.leaves(out_x)[0], atol=1e-5
    )
