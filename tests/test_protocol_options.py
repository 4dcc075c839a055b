"""The training options of the papers' released protocols, each against a
closed form or a computation by hand (the update schemes are in
test_schemes.py): SGD's lr and
momentum schedules, the uniform noise prior, the fixed toy training set,
[0, 1] images with a sigmoid G, BatchNorm in the MLP G (its epsilon, and
per pack slot), input dropout, weight initialisations, a training split
slice; and their validation.
"""

import json

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from gan_jax import data, errors, losses, sampling, train, train_state
from gan_jax import updates
from gan_jax import validate
from gan_jax.models import mlp
from experiments import goodfellow2014_mnist, toy_ring


def _tiny_ring_config():
  c = toy_ring.get_config('smoke')
  c.model.g.hidden, c.model.d.hidden = (8,), (8,)
  c.batch_size = 16
  return c


def _goodfellow_optim():
  """The released protocol's optimizer settings, as the study sets them."""
  return goodfellow2014_mnist.get_config().optim


def test_sgd_schedules_at_given_steps():
  """lr_t = max(0.1 / 1.000004^t, 1e-6); momentum 0.5 until update 500,
  linear to 0.7 at update 125,000 (epochs 1 to 250 of 500 updates)."""
  lr, momentum = train_state.sgd_schedules(_goodfellow_optim(), 'g')
  for t in (0, 1, 50_000, 1_000_000):
    want = max(0.1 / 1.000004**t, 1e-6)
    assert float(lr(jnp.int32(t))) == pytest.approx(want, rel=1e-5)
  assert float(lr(jnp.int32(5_000_000))) == pytest.approx(1e-6)
  for t, want in (
    (0, 0.5),
    (500, 0.5),
    (62_750, 0.6),
    (125_000, 0.7),
    (10**6, 0.7),
  ):
    assert float(momentum(jnp.int32(t))) == pytest.approx(want, rel=1e-6)


def test_sgd_lr_sum_is_the_schedules_sum():
  """sgd_lr_sum(t) = sum_{s<t} lr_s of sgd_schedules' rate, before and
  after the floor, and without decay."""
  optim = _goodfellow_optim()
  s = np.arange(20_000)
  want = np.maximum(0.1 / 1.000004**s, 1e-6).sum()
  assert train_state.sgd_lr_sum(optim, 'g', 20_000) == pytest.approx(want)
  assert train_state.sgd_lr_sum(optim, 'd', 20_000) == pytest.approx(want / 2)
  assert train_state.sgd_floor_step(optim, 'g') == 2_878_238
  optim.update(lr_decay=1.01, lr_min=0.01)  # floor from update 232 on
  assert train_state.sgd_floor_step(optim, 'g') == 232
  lr = train_state.sgd_schedules(optim, 'g')[0]
  want = np.cumsum([float(lr(jnp.int32(t))) for t in range(500)])
  for t in (1, 100, 232, 233, 500):
    assert train_state.sgd_lr_sum(optim, 'g', t) == pytest.approx(
      want[t - 1], rel=1e-5
    )
  optim.update(lr_decay=1.0)
  assert train_state.sgd_lr_sum(optim, 'g', 7) == pytest.approx(0.7)
  assert train_state.sgd_floor_step(optim, 'g') is None


def _runs_linear_in_spent_lr(root, optim, slopes):
  """Runs model_k under root: parzen_ll = 100 + 2 k + slopes[k] S(t) at
  epochs 5 to 400."""
  config = goodfellow2014_mnist.get_config().to_dict()
  steps = np.arange(1, 81) * 2500
  spent = np.array([train_state.sgd_lr_sum(optim, 'g', t) for t in steps])
  for k, slope in enumerate(slopes):
    run = root / f'model_{k}'
    run.mkdir(parents=True)
    (run / 'config.json').write_text(json.dumps({**config, 'seed': k}))
    rows = [
      {'step': int(t), 'eval/parzen_ll': 100 + 2 * k + slope * v}
      for t, v in zip(steps, spent)
    ]
    (run / 'metrics.jsonl').write_text(
      ''.join(json.dumps(r) + '\n' for r in rows)
    )
  return str(root)


def test_goodfellow_lr_reading_on_runs_linear_in_the_spent_lr(tmp_path):
  """Three runs 100 + 2 k + 0.002 S(t), S the spent lr: the mean's gain is
  2 nats per 1,000 of S in every window, with no error over runs, and the
  projection to the floor 100 + 2 + 0.002 S(2.88M). Runs whose slopes differ
  project with a positive error, at the epochs past their last only."""
  optim = _goodfellow_optim()
  runs = _runs_linear_in_spent_lr(tmp_path / 'a', optim, [0.002] * 3)
  text = goodfellow2014_mnist.lr_reading(runs, 200, ())
  windows = [line.split(' | ') for line in text.splitlines()[2:5]]
  assert [w[0] for w in windows] == ['| 100-200', '| 200-300', '| 300-400']
  assert all(w[-1] == '2.00 |' for w in windows)
  assert '2.00 ± 0.00 nats per 1,000 of S' in text
  floor = train_state.sgd_lr_sum(optim, 'g', 2_878_238)  # 0.1/1.000004^t = 1e-6
  assert (
    text.splitlines()[-1]
    == f'| 5,756 | 25,000 | {102 + 0.002 * floor:.1f} ± 0.0 |'
  )
  runs = _runs_linear_in_spent_lr(
    tmp_path / 'b', optim, [0.0019, 0.002, 0.0021]
  )
  rows = goodfellow2014_mnist.lr_reading(runs, 200, (300, 500)).splitlines()
  projected = rows[rows.index('| --- | --- | --- |') + 1 :]
  assert [r.split(' | ')[0] for r in projected] == ['| 500', '| 5,756']
  errors_ = [float(r.split(' ± ')[1].rstrip(' |')) for r in projected]
  assert 0 < errors_[0] < errors_[1]


def test_sgd_optimizer_is_heavy_ball_with_the_schedules():
  """Two updates of make_optimizers' SGD: t <- g + mu_t t, p <- p - lr_t t."""
  optim = _goodfellow_optim()
  optim.update(lr_decay=2.0, momentum_ramp=(0, 2))  # visible changes
  tx = train_state.make_optimizers(optim)[0]
  p = {'w': jnp.array([1.0, -2.0])}
  opt = tx.init(p)
  trace, want = jnp.zeros(2), p['w']
  lr, mu = train_state.sgd_schedules(optim, 'g')
  for t, grad in enumerate((jnp.array([0.5, 1.0]), jnp.array([-1.0, 3.0]))):
    updates, opt = tx.update({'w': grad}, opt, p)
    p = optax.apply_updates(p, updates)
    trace = grad + mu(jnp.int32(t)) * trace
    want = want - lr(jnp.int32(t)) * trace
    np.testing.assert_allclose(p['w'], want, rtol=1e-6)


def test_released_d_steps_are_lr_0p1_on_half_our_d_loss():
  """The released d_obj is 0.5 (BCE(D(x), 1) + BCE(D(G(z)), 0)), half of
  losses.standard_d_loss: the study's D optimizer on ours takes the steps of
  pylearn2's v <- mu v - 0.1/1.000004^t grad, p <- p + v on theirs."""
  optim = _goodfellow_optim()
  d_tx = train_state.make_optimizers(optim)[1]
  x_real, x_fake = jnp.array([[0.3], [-1.2]]), jnp.array([[2.0], [0.4]])

  def ours(w):
    return losses.standard_d_loss(w * x_real, w * x_fake)

  def theirs(w):
    bce = jnp.mean(jax.nn.softplus(-w * x_real))
    return 0.5 * (bce + jnp.mean(jax.nn.softplus(w * x_fake)))

  w, opt = jnp.float32(0.7), d_tx.init(jnp.float32(0.7))
  v, want = 0.0, 0.7
  for t in range(3):
    updates, opt = d_tx.update(jax.grad(ours)(w), opt, w)
    w = optax.apply_updates(w, updates)
    v = 0.5 * v - 0.1 / 1.000004**t * float(jax.grad(theirs)(jnp.float32(want)))
    want += v
    assert float(w) == pytest.approx(want, rel=1e-6)
  g_lr = train_state.sgd_schedules(optim, 'g')[0]
  assert float(g_lr(jnp.int32(0))) == pytest.approx(0.1)


def test_uniform_prior_has_unit_variance_on_its_bounds():
  z = np.asarray(sampling.noise(jax.random.PRNGKey(0), (200_000,), 'uniform'))
  assert np.abs(z).max() <= np.sqrt(3) and np.abs(z).max() > 1.72
  assert z.var() == pytest.approx(1.0, abs=0.01)  # s.e. of var ~ 0.002
  assert z.mean() == pytest.approx(0.0, abs=0.01)


def test_fixed_toy_set_is_the_same_at_every_load_and_batches_come_from_it():
  ring = data.DATASETS['ring']
  cfg = ml_collections.ConfigDict({'num_train': 1000, 'subset_seed': 3})
  a, b = ring.load(cfg), ring.load(cfg)  # a resumed run loads it again
  np.testing.assert_array_equal(a['points'], b['points'])
  assert a['points'].shape == (1000, 2) and a['labels'].shape == (1000,)
  cfg.subset_seed = 4
  assert not np.allclose(ring.load(cfg)['points'], a['points'])
  x, k = ring.sample(a, jax.random.PRNGKey(0), 500)
  rows = {tuple(p) for p in a['points'].tolist()}
  assert all(tuple(p) in rows for p in np.asarray(x).tolist())
  assert 'points' not in ring.load(ml_collections.ConfigDict({}))


def test_unit_range_images_and_sigmoid_generator():
  source = data.random_images(50, (4, 4, 1))
  x, _ = data.DATASETS['mnist'].sample(source, jax.random.PRNGKey(0), 64, True)
  assert 0 <= float(x.min()) and float(x.max()) <= 1
  x_sym, _ = data.DATASETS['mnist'].sample(source, jax.random.PRNGKey(0), 64)
  cfg = ml_collections.ConfigDict({'unit_range': True})
  np.testing.assert_allclose(data.to_symmetric(x, cfg), x_sym, atol=1e-6)
  g = mlp.Generator(shape=(4, 4, 1), hidden=(8,), output='sigmoid')
  z = jax.random.normal(jax.random.PRNGKey(0), (32, 3)) * 10
  out = g.apply(g.init(jax.random.PRNGKey(1), z), z)
  assert 0 <= float(out.min()) and float(out.max()) <= 1


def test_mlp_options_batchnorm_input_dropout_and_init():
  z = jnp.ones((8, 3))
  g = mlp.Generator(shape=(2,), hidden=(16,), output='linear', norm='batch')
  variables = g.init(jax.random.PRNGKey(0), z)
  assert 'bias' not in variables['params']['Dense_0']  # BN follows
  assert 'BatchNorm_0' in variables['batch_stats']
  d = mlp.Discriminator(hidden=(16,), input_dropout=0.5)
  x = jnp.ones((8, 4))
  v = d.init(jax.random.PRNGKey(0), x, train=False)
  a = d.apply(v, x, train=True, rngs={'dropout': jax.random.PRNGKey(1)})
  b = d.apply(v, x, train=True, rngs={'dropout': jax.random.PRNGKey(2)})
  assert not np.allclose(a, b)
  np.testing.assert_array_equal(
    d.apply(v, x, train=False), d.apply(v, x, train=False)
  )
  d = mlp.Discriminator(hidden=(64,), weight_init='uniform:0.005')
  kernel = d.init(jax.random.PRNGKey(0), x)['params']['Dense_0']['kernel']
  assert np.abs(kernel).max() <= 0.005 and np.abs(kernel).max() > 0.004
  d = mlp.Discriminator(hidden=(400,), weight_init='normal:0.02')
  kernel = d.init(jax.random.PRNGKey(0), x)['params']['Dense_0']['kernel']
  assert np.std(kernel) == pytest.approx(0.02, rel=0.1)
  with pytest.raises(ValueError, match='unknown init'):
    mlp.Discriminator(weight_init='uniform').init(jax.random.PRNGKey(0), x)


def test_batchnorm_epsilon_in_the_mlp_generator():
  """One hidden layer, BN at init (scale 1, bias 0): G(z) = relu((h -
  mean h) / sqrt(var h + eps)) W1 + b1 with h = z W0 over the batch."""
  z = jax.random.normal(jax.random.PRNGKey(0), (16, 3)) * 0.01
  for eps in (1e-4, 1e-2):
    g = mlp.Generator(
      shape=(2,), hidden=(5,), output='linear', norm='batch', bn_epsilon=eps
    )
    v = g.init(jax.random.PRNGKey(1), z)
    out, _ = g.apply(v, z, mutable=['batch_stats'])
    p = v['params']
    h = np.asarray(z) @ np.asarray(p['Dense_0']['kernel'])
    h = (h - h.mean(0)) / np.sqrt(h.var(0) + eps)
    want = np.maximum(h, 0) @ p['Dense_1']['kernel'] + p['Dense_1']['bias']
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-6)


def test_g_batchnorm_per_pack_slot_is_one_g_call_per_slot():
  """g_bn_per_slot with pack m: G's training output on rows j, j+m, ... is
  G's output on those rows alone (slot j of models.pack), and the new
  running statistics are the mean of the m calls'; without it, one call."""
  c = _tiny_ring_config()
  c.model.g.norm, c.model.pack, c.model.g_bn_per_slot = 'batch', 2, True
  gan = train_state.build(c, (2,))
  state = train_state.init_state(gan, 2, (2,), jax.random.PRNGKey(0))
  z = jax.random.normal(jax.random.PRNGKey(1), (12, 2))
  rules = updates.Rules.of(c)
  out, stats = updates.apply_g(
    gan, rules, state.g_params, state.g_stats, z, None
  )
  variables = {'params': state.g_params, 'batch_stats': state.g_stats}
  calls = [
    gan.g.apply(variables, z[j::2], None, train=True, mutable=['batch_stats'])
    for j in range(2)
  ]
  for j, (want, _) in enumerate(calls):
    np.testing.assert_allclose(out[j::2], want, rtol=1e-5, atol=1e-6)
  mean = jax.tree.map(
    lambda a, b: (a + b) / 2,
    calls[0][1]['batch_stats'],
    calls[1][1]['batch_stats'],
  )
  jax.tree.map(np.testing.assert_allclose, stats, mean)
  c.model.g_bn_per_slot = False
  rules = updates.Rules.of(c)
  joint, _ = updates.apply_g(gan, rules, state.g_params, state.g_stats, z, None)
  assert not np.allclose(joint, out, atol=1e-3)


def test_train_split_slice(mnist_dirs):
  manual_dir, data_dir = mnist_dirs
  cfg = ml_collections.ConfigDict(
    {'data_dir': data_dir, 'manual_dir': manual_dir, 'train_split': 'train'}
  )
  full = data.DATASETS['mnist'].load(cfg)
  cfg.train_split = 'train[0:50000]'
  part = data.DATASETS['mnist'].load(cfg)
  assert len(part['labels']) == 50_000
  np.testing.assert_array_equal(part['images'], full['images'][:50_000])


@pytest.mark.parametrize(
  'fields, match',
  [
    ({'update_scheme': 'lookahead'}, 'unknown update_scheme'),
    ({'update_scheme': 'simultaneous', 'd_steps': 2}, 'd_steps=1'),
    ({'optim.name': 'rmsprop'}, 'unknown optim.name'),
    ({'optim.momentum': 1.0}, 'momentum'),
    ({'optim.momentum_ramp': (5, 2)}, 'momentum_ramp'),
    ({'model.z_prior': 'cauchy'}, 'unknown z_prior'),
    ({'data.unit_range': True}, 'unit_range'),
    ({'data.num_train': -1}, 'num_train'),
  ],
)
def test_bad_protocol_options_are_refused(fields, match):
  c = _tiny_ring_config()
  for field, value in fields.items():
    *parents, leaf = field.split('.')
    node = c
    for p in parents:
      node = node[p]
    node[leaf] = value
  with pytest.raises(errors.ConfigError, match=match):
    validate.validate(c)


def test_sgd_models_in_one_program_differ_only_in_seed():
  a, b = _tiny_ring_config(), _tiny_ring_config()
  a.optim.name = b.optim.name = 'sgd'
  b.seed, b.optim.lr = 1, 0.5
  with pytest.raises(errors.ConfigError, match='differ only in seed'):
    train.train_models([a, b], ['/nonexistent/a', '/nonexistent/b'])


def test_output_bias_from_marginals_gives_the_pixel_means():
  """sigmoid(b) = mean pixel intensity (clipped to [1e-7, 1 - 1e-7]), and
  init_state puts b in G's output layer only."""
  images = data.random_images(100, (4, 4, 1))['images']
  images[:, 0, 0, 0] = 0  # a pixel that is always black: clipped
  b = mlp.marginal_bias(images)
  mean = images.reshape(100, -1).mean(0) / 255.0
  np.testing.assert_allclose(jax.nn.sigmoid(b)[1:], mean[1:], rtol=1e-5)
  assert float(jax.nn.sigmoid(b[0])) == pytest.approx(1e-7, rel=1e-3)
  c = _tiny_ring_config()
  c.model.g.output_bias = 'marginals'
  gan = train_state.build(c, (4, 4, 1))
  state = train_state.init_state(
    gan, 2, (4, 4, 1), jax.random.PRNGKey(0), output_bias=b
  )
  np.testing.assert_array_equal(state.g_params['Dense_1']['bias'], b)
  assert not np.any(state.g_params['Dense_0']['bias'])
  with pytest.raises(errors.ConfigError, match='output_bias'):
    validate.validate(c)  # toy data has no pixel marginals
