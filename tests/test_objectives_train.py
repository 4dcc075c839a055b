"""Every objective trains every architecture, and the training options do
what their papers say.

- Each registered loss x the MLP (toy ring) and the MNIST-shaped DCGAN,
  and the losses whose steps differ (SUBSETS) x the CIFAR-10-shaped DCGAN
  and SNGAN ResNet (random uint8 images stand in for the TFDS sets, which
  tests/test_data.py loads through mock data), 2 iterations on 4 devices
  (and on 1 for the non-saturating loss; test_train_step.py shows 1 and 4
  devices compute the same step): every metric and parameter stays finite.
  Class-conditional pairs too: the MLP with onehot(y) in G and an AC-GAN D
  on the ring's 8 components (every loss), the DCGAN with class-conditional
  BN and a projection D on MNIST-shaped data (the losses of SUBSETS;
  gradient penalties then see D(., y_real)).
- Weight clipping: after a step every D weight lies in [-c, c].
- EMA: after n steps, g_ema = d^n p_0 + (1 - d) sum_k d^(n-k) p_k, the
  closed form of the recurrence e_k = d e_{k-1} + (1 - d) p_k.
"""

import jax
import ml_collections
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import data, losses, models, sampling
from gan_jax import train_state, train_step as ts
from gan_jax import validate

ARCHS = {  # name -> (dataset, model name, g fields, d fields[, classes])
  'mlp_ring': (
    'ring',
    'mlp',
    {'hidden': (16,), 'output': 'linear'},
    {'hidden': (16,), 'dropout': 0.5},
  ),
  'dcgan_28': ('mnist', 'dcgan', {'width': 4}, {'width': 4, 'norm': 'batch'}),
  'dcgan_32': (
    'cifar10',
    'dcgan',
    {'width': 4},
    {'width': 4, 'norm': 'none', 'spectral_norm': True},
  ),
  'resnet_32': ('cifar10', 'resnet', {'width': 4}, {'width': 4}),
  'mlp_ring_acgan': (
    'ring',
    'mlp',
    {'hidden': (16,), 'output': 'linear'},
    {'hidden': (16,), 'cond': 'acgan'},
    8,
  ),
  'dcgan_28_projection': (
    'mnist',
    'dcgan',
    {'width': 4, 'cond': 'bn'},
    {'width': 4, 'norm': 'batch', 'cond': 'projection'},
    10,
  ),
}


# The 32x32 families and the conditional DCGAN run the losses whose steps
# differ: a plain one, the gradient penalties (through their D; critic
# D(., y_real) when conditional) and one that feeds G the real logits, and
# the 32x32 ones hinge, their papers' objective (Miyato et al. 2018). The
# losses that differ from non_saturating only in a function of the logits
# (minimax, least_squares) and weight clipping (wasserstein) run on the
# MNIST DCGAN and the MLPs, which run every loss.
STEP_KINDS = (
  'non_saturating',
  'wasserstein_gp',
  'dragan',
  'relativistic_average',
)
SUBSETS = {
  'dcgan_28_projection': STEP_KINDS,
  'dcgan_32': STEP_KINDS + ('hinge',),
  'resnet_32': STEP_KINDS + ('hinge',),
}


def _config(arch, loss, **overrides):
  dataset, model, g_fields, d_fields, *classes = ARCHS[arch]
  c = config_lib.base_config()
  c.model.num_classes = classes[0] if classes else 0
  c.loss = loss
  c.data.name = dataset
  c.model.name = model
  c.model.z_dim = 8
  c.model.g = ml_collections.ConfigDict(g_fields)
  c.model.d = ml_collections.ConfigDict(d_fields)
  c.batch_size = 8
  c.steps_per_dispatch = c.log_every = c.sample_every = 1
  c.checkpoint_every = 1
  c.eval.metrics = ''  # the step is under test here, not the evaluation
  losses.apply_defaults(c)
  c.update(overrides)
  validate.validate(c)
  return c


def _source(config):
  dataset = data.DATASETS[config.data.name]
  if dataset.kind == 'points':
    return dataset.load(config.data)
  return data.random_images(32, dataset.shape)


def _train(config, n_devices, source, steps=1):
  mesh = jax.make_mesh(
    (n_devices,),
    (ts.AXIS,),
    axis_types=(jax.sharding.AxisType.Auto,),
    devices=jax.devices()[:n_devices],
  )
  shape = data.DATASETS[config.data.name].shape
  g, d = models.build(config.model, shape, axis_name=ts.AXIS)
  g_tx, d_tx = train_state.make_optimizers(config.optim)
  state = train_state.init_state(
    train_state.GAN(g, d, g_tx, d_tx),
    config.model.z_dim,
    shape,
    jax.random.PRNGKey(0),
    config.ema_decay > 0,
  )
  fn = ts.make_train_fn(mesh, config, train_state.GAN(g, d, g_tx, d_tx))
  history = [jax.device_get(state)]  # copied: the step donates its input
  for _ in range(steps):
    state, metrics = fn(state, source)
    history.append(jax.device_get(state))
  return history, jax.device_get(metrics)


@pytest.mark.parametrize(
  'arch, loss',
  [
    (arch, loss)
    for loss in sorted(losses.LOSSES)
    for arch in sorted(ARCHS)
    if loss in SUBSETS.get(arch, losses.LOSSES)
  ],
)
def test_objective_trains_architecture(arch, loss):
  config = _config(
    arch,
    loss,
    steps_per_dispatch=2,
    log_every=2,
    sample_every=2,
    checkpoint_every=2,
  )
  source = _source(config)
  for n_devices in (1, 4) if loss == 'non_saturating' else (4,):
    (*_, state), metrics = _train(config, n_devices, source)
    assert int(state.step) == 2
    for k, v in metrics.items():
      assert np.all(np.isfinite(v)), (n_devices, k, v)
    for leaf in jax.tree.leaves(state):
      assert np.all(np.isfinite(leaf)), n_devices


def test_acgan_logs_classifier_accuracy():
  """D's classifier learns the ring's 8 separated modes: its logged accuracy
  on real points starts near chance (1/8) and ends near 1, and G's samples
  come to be classified as the labels asked of G. Other Ds log neither."""
  config = _config(
    'mlp_ring_acgan',
    'non_saturating',
    steps_per_dispatch=200,
    batch_size=64,
    log_every=200,
    sample_every=200,
    checkpoint_every=200,
  )
  config.optim.lr = 3e-3
  _, metrics = _train(config, 1, _source(config))
  real, fake = metrics['ac_real_accuracy'], metrics['ac_fake_accuracy']
  assert real.shape == fake.shape == (200,)
  assert real[0] < 0.5 and real[-1] > 0.95, real[[0, -1]]
  assert fake[-1] > 0.9, fake[[0, -1]]
  _, metrics = _train(_config('mlp_ring', 'non_saturating'), 1, _source(config))
  assert not any(k.startswith('ac_') for k in metrics)


def test_weight_clipping_bounds_every_d_weight():
  c = 0.01
  config = _config('dcgan_28', 'wasserstein')
  assert config.d_weight_clip == c  # the WGAN default is applied
  (init, state), _ = _train(config, 1, _source(config))
  leaves = jax.tree.leaves(state.d_params)
  assert max(np.abs(x).max() for x in jax.tree.leaves(init.d_params)) > c
  assert all(np.abs(x).max() <= c for x in leaves)
  assert any(np.isclose(np.abs(x).max(), c) for x in leaves)


@pytest.mark.parametrize('start', [0, 2])
def test_ema_matches_closed_form(start):
  """After n updates, g_ema = d^(n-s) p_s + (1 - d) sum_{k>s} d^(n-k) p_k
  with s = ema_start (p_k: G's weights after update k)."""
  decay, n = 0.9, 4
  config = _config(
    'mlp_ring', 'non_saturating', ema_decay=decay, ema_start=start
  )
  history, _ = _train(config, 1, _source(config), steps=n)
  params = [s.g_params for s in history]
  expected = jax.tree.map(
    lambda *p: (
      decay ** (n - start) * p[start]
      + (1 - decay)
      * sum(decay ** (n - k) * p[k] for k in range(start + 1, n + 1))
    ),
    *params,
  )
  for a, b in zip(
    jax.tree.leaves(history[-1].g_ema), jax.tree.leaves(expected)
  ):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  # The EMA differs from the raw weights, so the check is not vacuous.
  assert any(
    np.abs(a - b).max() > 1e-4
    for a, b in zip(
      jax.tree.leaves(history[-1].g_ema), jax.tree.leaves(params[-1])
    )
  )


def _first_batch_norm(batch_stats):
  """{'mean', 'var'} of G's first BatchNorm in a batch_stats tree."""
  name = min(k for k in batch_stats if 'BatchNorm_0' in k)
  return batch_stats[name].get('BatchNorm_0', batch_stats[name])


def _assert_stats_of_z_w(batch_stats, params, z):
  """The first BatchNorm holds the batch mean and variance of z W."""
  h = np.asarray(z, np.float64) @ params['Dense_0']['kernel']
  stats = _first_batch_norm(batch_stats)
  np.testing.assert_allclose(stats['mean'], h.mean(0), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(stats['var'], h.var(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('arch', ['dcgan_28', 'dcgan_28_projection'])
def test_ema_generator_samples_with_its_own_batch_statistics(arch):
  """With an EMA (or standing_stats), sampling uses the EMA (trained)
  weights and the batch statistics of their own activations on the fixed
  draws: G's first BatchNorm follows a bias-free dense layer, so its mean
  and variance are those of z W."""
  config = _config(arch, 'non_saturating', ema_decay=0.9)
  history, _ = _train(config, 1, _source(config), steps=2)
  state = history[-1]
  g, _ = models.build(config.model, (28, 28, 1))
  variables = train_state.generator_variables(g, state, config.model.z_dim)
  assert variables['params'] is state.g_ema
  z = sampling.noise(
    jax.random.PRNGKey(train_state.STANDING_SEED),
    (train_state.STANDING_NUM, config.model.z_dim),
  )
  _assert_stats_of_z_w(variables['batch_stats'], state.g_ema, z)
  # Not the running statistics of the trained weights.
  stats = _first_batch_norm(variables['batch_stats'])
  running = _first_batch_norm(state.g_stats)
  assert np.abs(running['mean'] - stats['mean']).max() > 1e-3
  # Without an EMA: the trained weights and their running statistics, or
  # with standing=True the batch statistics of the trained weights.
  trained = state.replace(g_ema=None)
  plain = train_state.generator_variables(g, trained, config.model.z_dim)
  assert plain['batch_stats'] is state.g_stats
  standing = train_state.generator_variables(
    g, trained, config.model.z_dim, standing=True
  )
  assert standing['params'] is state.g_params
  _assert_stats_of_z_w(standing['batch_stats'], state.g_params, z)
