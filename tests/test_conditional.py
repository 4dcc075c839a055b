"""Class-conditional models, labelled data and grids (models.conditional).

- The generator's output depends on the label with z fixed: for onehot(y)
  with z ('concat') at initialisation; for class-conditional BatchNorm once
  its per-class gamma/beta differ (they start at 1 and 0 for every class).
- Class-conditional BN is BN(x) * gamma[y] + beta[y], BN with batch
  statistics, checked against numpy.
- The projection discriminator is psi(phi(x)) + <V[y], phi(x)>: on a
  hand-built MLP with numbers worked out by hand, and for DCGAN and the
  SNGAN ResNet against their sown features phi and their parameters.
- The AC-GAN discriminator returns (logits, class logits = dense(phi)).
- Spectral norm covers the class embedding (its sigma is tracked).
- Data: labels come with their examples; train_fraction keeps
  round(f * N_c) examples of each class; refused configs say what to do.
- The sample grid has one row per class and the same z down each column.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gan_jax import data, models
from gan_jax import errors, sampling, validate
from gan_jax.models import conditional
from experiments import mnist_dcgan

B = 4


def _build(name, shape, g=None, d=None, k=10):
  config = ml_collections.ConfigDict(
    {'name': name, 'z_dim': 8, 'g': g or {}, 'd': d or {}, 'num_classes': k}
  )
  return models.build(config, shape)


def _perturbed(variables, seed=0):
  """Every parameter plus N(0, 0.5^2) noise: per-class rows differ."""
  leaves, tree = jax.tree.flatten(variables['params'])
  keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
  noisy = [
    x + 0.5 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)
  ]
  return {**variables, 'params': jax.tree.unflatten(tree, noisy)}


@pytest.mark.parametrize(
  'name, shape, cond',
  [
    ('mlp', (28, 28, 1), 'concat'),
    ('dcgan', (28, 28, 1), 'concat'),
    ('dcgan', (28, 28, 1), 'bn'),
    ('dcgan', (32, 32, 3), 'bn'),
    ('resnet', (32, 32, 3), 'bn'),
  ],
)
def test_generator_output_depends_on_label(name, shape, cond):
  fields = {'hidden': (16,)} if name == 'mlp' else {'width': 4}
  g, _ = _build(name, shape, {**fields, 'cond': cond})
  z = jax.random.normal(jax.random.PRNGKey(1), (B, 8))
  y = jnp.array([0, 1, 2, 3])
  variables = g.init(jax.random.PRNGKey(0), z, y, train=False)
  if cond == 'bn':  # gamma = 1, beta = 0 for all classes at init
    same = g.apply(variables, z, y + 1, train=False)
    np.testing.assert_allclose(same, g.apply(variables, z, y, train=False))
    variables = _perturbed(variables)
  a = g.apply(variables, z, y, train=False)
  b = g.apply(variables, z, y + 1, train=False)
  assert a.shape == (B, *shape)
  assert np.abs(a - b).max(axis=tuple(range(1, a.ndim))).min() > 1e-3
  np.testing.assert_array_equal(a, g.apply(variables, z, y, train=False))


def test_class_batch_norm_formula():
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 3, 3, 5)) * 2 + 1
  y = jnp.array([0, 1, 2, 0, 1, 2])
  cbn = conditional.ClassBatchNorm(3, train=True)
  variables = _perturbed(cbn.init(jax.random.PRNGKey(1), x, y))
  out, _ = cbn.apply(variables, x, y, mutable=['batch_stats'])
  xn = np.asarray(x, np.float64)
  mean, var = xn.mean((0, 1, 2)), xn.var((0, 1, 2))
  gamma = np.asarray(variables['params']['gamma']['embedding'])[y]
  beta = np.asarray(variables['params']['beta']['embedding'])[y]
  want = (xn - mean) / np.sqrt(var + 1e-5) * gamma[:, None, None] + beta[
    :, None, None
  ]
  np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)


def test_projection_discriminator_hand_case():
  """x = (1, -2, 0.5), hidden phi = LReLU_0.2(x W + b) = (2, -0.4);
  psi(phi) = (3, 1) . phi + 0.25 = 5.85; V = [[1, 2], [-1, 0.5]]:
  y = 0 -> 5.85 + 1.2 = 7.05, y = 1 -> 5.85 - 2.2 = 3.65."""
  _, d = _build('mlp', (3,), d={'hidden': (2,)}, k=2)
  params = {
    'Dense_0': {
      'kernel': jnp.array([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]]),
      'bias': jnp.array([0.0, 0.5]),
    },
    'Dense_1': {'kernel': jnp.array([[3.0], [1.0]]), 'bias': jnp.array([0.25])},
    'class_embedding': {'embedding': jnp.array([[1.0, 2.0], [-1.0, 0.5]])},
  }
  shapes = d.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)), jnp.zeros(1, int))
  assert jax.tree.map(jnp.shape, shapes['params']) == jax.tree.map(
    jnp.shape, params
  )
  x = jnp.array([[1.0, -2.0, 0.5]] * 2)
  logits = d.apply({'params': params}, x, jnp.array([0, 1]), train=False)
  np.testing.assert_allclose(logits, [7.05, 3.65], rtol=1e-6)


@pytest.mark.parametrize(
  'name, shape, head',
  [
    ('dcgan', (28, 28, 1), 'Dense_0'),
    ('resnet', (32, 32, 3), 'Dense_0'),
  ],
)
def test_projection_equals_formula_on_sown_features(name, shape, head):
  _, d = _build(name, shape, d={'width': 4, 'spectral_norm': False})
  x = jax.random.uniform(jax.random.PRNGKey(0), (B, *shape), minval=-1)
  y = jnp.array([3, 1, 4, 1])
  variables = d.init(jax.random.PRNGKey(1), x, y, train=False)
  logits, inter = d.apply(
    variables, x, y, train=False, mutable=['intermediates']
  )
  phi = np.asarray(inter['intermediates']['features'][0], np.float64)
  p = variables['params']
  psi = phi @ np.asarray(p[head]['kernel'])[:, 0] + float(p[head]['bias'][0])
  v = np.asarray(p['class_embedding']['embedding'])[np.asarray(y)]
  np.testing.assert_allclose(
    logits, psi + np.sum(v * phi, -1), rtol=1e-4, atol=1e-4
  )
  other = d.apply(variables, x, (y + 1) % 10, train=False)
  assert np.abs(other - logits).min() > 1e-4


def test_acgan_discriminator_returns_class_logits():
  _, d = _build('dcgan', (28, 28, 1), d={'width': 4, 'cond': 'acgan'})
  x = jax.random.uniform(jax.random.PRNGKey(0), (B, 28, 28, 1), minval=-1)
  variables = d.init(jax.random.PRNGKey(1), x, None, train=False)
  (logits, classes), inter = d.apply(
    variables, x, train=False, mutable=['intermediates']
  )
  assert logits.shape == (B,) and classes.shape == (B, 10)
  phi = inter['intermediates']['features'][0]
  c = variables['params']['classifier']
  np.testing.assert_allclose(
    classes, phi @ c['kernel'] + c['bias'], rtol=1e-5, atol=1e-5
  )


def test_spectral_norm_covers_the_class_embedding():
  _, d = _build('resnet', (32, 32, 3), d={'width': 4})
  x = jnp.zeros((B, 32, 32, 3))
  variables = d.init(jax.random.PRNGKey(0), x, jnp.zeros(B, int), train=False)
  paths = [
    jax.tree_util.keystr(p)
    for p, _ in jax.tree_util.tree_flatten_with_path(variables['batch_stats'])[
      0
    ]
  ]
  assert any('class_embedding/embedding/sigma' in p for p in paths), paths
  with pytest.raises(ValueError, match='needs labels'):
    d.init(jax.random.PRNGKey(0), x, None, train=False)


def test_unknown_cond_is_refused():
  with pytest.raises(ValueError, match='unknown cond'):
    _build('mlp', (2,), g={'cond': 'bn'})[0].init(
      jax.random.PRNGKey(0), jnp.zeros((1, 8)), jnp.zeros(1, int)
    )


def test_samples_come_with_their_labels():
  source = data.random_images(50, (4, 4, 1))
  source['images'][:] = (source['labels'] * 20)[:, None, None, None]
  x, y = data.DATASETS['mnist'].sample(source, jax.random.PRNGKey(0), 64)
  np.testing.assert_allclose((x[:, 0, 0, 0] + 1) * 127.5, y * 20, atol=1e-3)
  ring = data.DATASETS['ring']
  centres = jnp.asarray(ring.centres)
  x, k = ring.draw(centres, jax.random.PRNGKey(1), 256)
  nearest = np.argmin(np.linalg.norm(x[:, None] - centres[None], axis=-1), 1)
  np.testing.assert_array_equal(nearest, k)
  assert ring.num_classes == 8 and data.DATASETS['grid'].num_classes == 25


def test_stratified_subset():
  labels = np.repeat(np.arange(3), [100, 50, 10])
  keep = data.stratified_subset(labels, 0.1, seed=0)
  assert np.all(np.diff(keep) > 0)
  np.testing.assert_array_equal(np.bincount(labels[keep]), [10, 5, 1])
  other = data.stratified_subset(labels, 0.1, seed=1)
  assert not np.array_equal(keep, other)


def test_grid_has_a_row_per_class():
  z, y, cols = sampling.grid_inputs(jax.random.PRNGKey(0), 64, 8, 10)
  assert cols == 6 and z.shape == (60, 8)
  np.testing.assert_array_equal(y, np.repeat(np.arange(10), 6))
  rows = np.asarray(z).reshape(10, 6, 8)
  np.testing.assert_array_equal(rows, np.broadcast_to(rows[0], rows.shape))
  z, y, cols = sampling.grid_inputs(jax.random.PRNGKey(0), 16, 8, 0)
  assert z.shape == (16, 8) and cols == 8 and not y.any()


@pytest.mark.parametrize(
  'field, value, message',
  [
    ('model.num_classes', 7, 'has 10 classes'),
    ('model.pack', 2, 'PacGAN'),
    ('data.train_fraction', 0.0, 'train_fraction'),
    ('data.train_fraction', 1.5, 'train_fraction'),
    ('ac_weight', -1.0, 'ac_weight'),
  ],
)
def test_refused_conditional_configs(field, value, message):
  c = mnist_dcgan.get_config('smoke')
  c.model.num_classes = 10
  validate.validate(c)
  parent, name = field.rsplit('.', 1) if '.' in field else ('', field)
  (c[parent] if parent else c)[name] = value
  with pytest.raises(errors.ConfigError, match=message):
    validate.validate(c)
