"""Data-efficient training against its definitions: DiffAugment's and ADA's
transforms (gan_jax/augment.py), ADA's p rule, LeCam, consistency
regularisation, D's overfitting probe; the augmented step stays
data-parallel, vmaps, and resumes exactly."""

import os
import pathlib
import re
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax import augment, checkpoint, data, errors, models, overfitting
from gan_jax import train, train_state
from gan_jax import train_step as ts, updates
from experiments import mnist_dcgan

REPO = pathlib.Path(__file__).resolve().parents[1]
MNIST = REPO.parent / 'shared' / 'data' / 'mnist'


def _images(n=6, side=12, seed=0):
  return (
    jax.random.uniform(jax.random.PRNGKey(seed), (n, side, side, 1)) * 2 - 1
  )


def _keys(n=6, seed=1):
  return jax.random.split(jax.random.PRNGKey(seed), n)


def test_every_op_is_the_identity_at_its_neutral_value():
  x = _images()[0]
  np.testing.assert_array_equal(augment.brightness(x, 0.0), x)
  np.testing.assert_allclose(augment.saturation(x, 1.0), x, atol=1e-6)
  np.testing.assert_allclose(augment.contrast(x, 1.0), x, atol=1e-6)
  np.testing.assert_array_equal(augment.translate(x, 0, 0), x)
  np.testing.assert_array_equal(augment.cutout(x, 5, 5, (0, 0)), x)
  np.testing.assert_array_equal(augment.warp(x, jnp.eye(3)), x)
  # ADA at p = 0 applies no op, every op named.
  ada = augment.Policy('ada', augment.ADA_OPS)
  np.testing.assert_array_equal(ada(_images(), _keys(), 0.0), _images())
  # On one channel saturation (DiffAugment's and ADA's) is the identity.
  rgb = jnp.tile(x, (1, 1, 3))
  assert not np.allclose(augment.saturation(rgb + jnp.arange(3), 2.0), rgb)
  np.testing.assert_allclose(augment.saturation(x, 2.0), x, atol=1e-6)


def _np_translate(x, ty, tx):
  """DiffAugment's rand_translation with the draws (ty, tx): x padded by
  one zero pixel, read at clamp(i + t + 1)."""
  h, w = x.shape[:2]
  pad = np.pad(x, ((1, 1), (1, 1), (0, 0)))
  rows = np.clip(np.arange(h) + ty + 1, 0, h + 1)
  cols = np.clip(np.arange(w) + tx + 1, 0, w + 1)
  return pad[rows][:, cols]


def _np_cutout(x, oy, ox, size):
  """DiffAugment's rand_cutout with offsets (oy, ox): the clamped grid of
  size cells from offset - size // 2 set to 0."""
  h, w = x.shape[:2]
  mask = np.ones((h, w), x.dtype)
  gy = np.clip(np.arange(size[0]) + oy - size[0] // 2, 0, h - 1)
  gx = np.clip(np.arange(size[1]) + ox - size[1] // 2, 0, w - 1)
  mask[np.ix_(gy, gx)] = 0
  return x * mask[..., None]


def test_translation_and_cutout_match_numpy_references():
  x = np.asarray(_images(side=28)[0])
  for ty, tx in [(0, 0), (4, -4), (-3, 2), (1, 0)]:
    np.testing.assert_array_equal(
      augment.translate(jnp.asarray(x), ty, tx), _np_translate(x, ty, tx)
    )
  size = (augment.cutout_size(28),) * 2
  for oy, ox in [(0, 0), (28, 28), (14, 3), (27, 20)]:
    np.testing.assert_array_equal(
      augment.cutout(jnp.asarray(x), oy, ox, size), _np_cutout(x, oy, ox, size)
    )
  # The policies' draws: each image is one of the references in range.
  batch = _images(n=8, side=28)
  out = augment.Policy('diffaugment', ('translation',))(batch, _keys(8))
  s = augment.translation_range(28)
  assert s == 4
  for xi, yi in zip(np.asarray(batch), np.asarray(out)):
    assert any(
      np.array_equal(yi, _np_translate(xi, a, b))
      for a in range(-s, s + 1)
      for b in range(-s, s + 1)
    )
  out = augment.Policy('diffaugment', ('cutout',))(batch, _keys(8))
  for xi, yi in zip(np.asarray(batch), np.asarray(out)):
    assert any(
      np.array_equal(yi, _np_cutout(xi, a, b, size))
      for a in range(29)
      for b in range(29)
    )


@pytest.mark.parametrize(
  'method, names',
  [('diffaugment', (op,)) for op in augment.DIFFAUGMENT_OPS]
  + [('ada', (op,)) for op in augment.ADA_OPS],
)
def test_gradients_reach_g_through_every_op(method, names):
  """d/dw of a score of T(G_w(z)), G a linear map: finite and non-zero."""
  z = jax.random.normal(jax.random.PRNGKey(2), (6, 8))
  w = jax.random.normal(jax.random.PRNGKey(3), (8, 12 * 12)) * 0.1
  score = jax.random.normal(jax.random.PRNGKey(4), (12, 12, 1))
  policy = augment.Policy(method, names)

  def loss(w):
    x = jnp.tanh(z @ w).reshape(6, 12, 12, 1)
    return jnp.sum(policy(x, _keys(), 1.0) * score) ** 2

  g = jax.grad(loss)(w)
  assert np.all(np.isfinite(g)) and np.abs(g).max() > 0


class _Linear(nn.Module):
  """D(x) = w . x, or with `invariant` w * sum(x): the latter does not
  change under a translation that keeps the image inside the frame."""

  invariant: bool = False

  @nn.compact
  def __call__(self, x, y=None, train=True):
    del y, train
    flat = x.reshape(x.shape[0], -1)
    if self.invariant:
      return jnp.sum(flat, -1) * self.param('w', nn.initializers.ones, ())
    w = self.param('w', nn.initializers.normal(1.0), (flat.shape[-1],))
    return flat @ w


def _rules(**fields):
  config = mnist_dcgan.get_config('smoke')
  for k, v in fields.items():
    *parents, leaf = k.split('.')
    node = config
    for p in parents:
      node = node[p]
    node[leaf] = v
  return updates.Rules.of(config), config


def _d_loss(rules, d, real, fake, aug, adaptive=None, step=0):
  """updates.d_loss of a D module on one shard (axis 'data' of size 1)."""
  gan = train_state.GAN(None, d, optax.sgd(0.1), optax.sgd(0.1))
  params = d.init(jax.random.PRNGKey(0), real)['params']

  def f(real, fake, aug):
    return updates.d_loss(
      gan,
      rules,
      params,
      {},
      real,
      None,
      fake,
      None,
      jax.random.PRNGKey(5),
      step,
      adaptive,
      aug,
    )

  out = jax.vmap(f, axis_name=ts.AXIS)(real[None], fake[None], aug[None])
  return jax.tree.map(lambda a: a[0] if a is not None else None, out), params


def _frame(n, seed):
  """Images with zero borders wider than DiffAugment's largest shift."""
  x = np.zeros((n, 16, 16, 1), np.float32)
  x[:, 4:12, 4:12] = np.asarray(_images(n, 8, seed))
  return jnp.asarray(x)


def test_real_and_fake_are_transformed_as_the_policy_says():
  """D's real and fake passes see the policy's transform (their own draws);
  with reals_only the fakes go in untouched."""
  real, fake, aug = _frame(4, 0), _frame(4, 1), _keys(4)
  d = _Linear()
  for reals_only in (False, True):
    rules, _ = _rules(
      **{'augment.method': 'diffaugment', 'augment.reals_only': reals_only}
    )
    (_, out), params = _d_loss(rules, d, real, fake, aug)
    _, real_logits, fake_logits = out[:3]
    w = params['w']
    seen_real = rules.policy(real, augment.view_keys(aug, augment.REAL))
    seen_fake = rules.policy(fake, augment.view_keys(aug, augment.FAKE))
    flat = lambda x: x.reshape(4, -1)  # noqa: E731
    np.testing.assert_allclose(real_logits, flat(seen_real) @ w, rtol=1e-5)
    expected = flat(fake if reals_only else seen_fake) @ w
    np.testing.assert_allclose(fake_logits, expected, rtol=1e-5)
    assert not np.allclose(seen_real, real)


def test_consistency_is_zero_for_a_d_invariant_to_the_transform():
  """CR's and bCR's terms vanish for D(x) = w sum(x) under shifts that keep
  the image in frame, and not for a D that weighs pixels by position."""
  real, fake, aug = _frame(4, 0), _frame(4, 1), _keys(4)
  on = {'consistency.real': 10.0, 'consistency.fake': 10.0}
  for d, zero in ((_Linear(invariant=True), True), (_Linear(), False)):
    base = _d_loss(_rules()[0], d, real, fake, aug)[0][0]
    with_cr = _d_loss(_rules(**on)[0], d, real, fake, aug)[0][0]
    assert np.isclose(with_cr, base, rtol=1e-6) == zero
    if not zero:  # the term is the mean squared logit change, times 10
      assert with_cr > base


def test_lecam_loss_and_anchors_by_hand():
  real_logits = jnp.array([2.0, -1.0, 0.5])
  fake_logits = jnp.array([-0.5, 1.0, -2.0])
  anchors = jnp.array([0.3, -0.2])  # (a_R, a_F)
  expected = np.mean(np.maximum(np.array([2.0, -1.0, 0.5]) + 0.2, 0) ** 2)
  expected += np.mean(np.maximum(0.3 - np.array([-0.5, 1.0, -2.0]), 0) ** 2)
  np.testing.assert_allclose(
    updates.lecam_loss(real_logits, fake_logits, anchors), expected, rtol=1e-6
  )
  rules, _ = _rules(
    **{'lecam.weight': 0.3, 'lecam.decay': 0.9, 'lecam.start': 2}
  )
  state = train_state.Adaptive(anchors=anchors)

  def adapt(adaptive, step):
    return jax.vmap(
      lambda r, f: updates.adapt(rules, adaptive, r, f, step),
      axis_name=ts.AXIS,
    )(real_logits[None], fake_logits[None]).anchors[0]

  means = np.array([0.5, -0.5])
  np.testing.assert_allclose(adapt(state, 1), means, rtol=1e-6)  # before start
  np.testing.assert_allclose(
    adapt(state, 2), 0.9 * np.array([0.3, -0.2]) + 0.1 * means, rtol=1e-6
  )


def test_ada_p_follows_its_rule_and_stays_in_the_unit_interval():
  """Interval 2, step s: p moves by sign(mean r_t - target) s after every
  second update (r_t = E sign D(x) of each), clipped to [0, 1]."""
  rules, config = _rules(
    **{
      'augment.method': 'ada',
      'augment.ada_interval': 2,
      'augment.ada_kimg': 0.064,  # s = 16 * 2 / 64 = 0.5
      'augment.ada_target': 0.6,
    }
  )
  assert rules.ada_step == config.batch_size * 2 / 64 == 0.5
  adaptive = train_state.Adaptive(
    p=jnp.float32(0.2), signs=jnp.float32(0), count=jnp.int32(0)
  )
  signs = [1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
  p, pending, expected = 0.2, [], []
  for r in signs:
    pending.append(r)
    if len(pending) == 2:
      p = min(1.0, max(0.0, p + np.sign(np.mean(pending) - 0.6) * 0.5))
      pending = []
    expected.append(p)
  got = []
  for r in signs:
    logits = jnp.full((1, 4), r)
    adaptive = jax.vmap(
      lambda lg: updates.adapt(rules, adaptive, lg, lg, 0), axis_name=ts.AXIS
    )(logits)
    adaptive = jax.tree.map(lambda a: a[0], adaptive)
    got.append(float(adaptive.p))
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  hand = [0.2, 0.7, 0.7, 0.2, 0.2, 0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.0]
  np.testing.assert_allclose(expected, hand, atol=1e-12)  # clipped at both ends


def _augmented_config():
  """A small MLP GAN on images with ADA (p moving every update), LeCam from
  update 0, CR and bCR: every new piece of state and loss at once."""
  config = mnist_dcgan.get_config('smoke')
  config.model.name = 'mlp'
  config.model.g = {'hidden': (32,)}
  config.model.d = {'hidden': (32,)}
  config.augment.method = 'ada'
  config.augment.ada_p = 0.5
  config.augment.ada_interval = 1
  config.augment.ada_kimg = 1.0
  config.lecam.weight, config.lecam.start = 0.3, 0
  config.consistency.real = config.consistency.fake = 1.0
  config.steps_per_dispatch = 3
  return config


def _run(n_devices, config, source, num_models=1):
  mesh = jax.make_mesh(
    (n_devices,),
    (ts.AXIS,),
    axis_types=(jax.sharding.AxisType.Auto,),
    devices=jax.devices()[:n_devices],
  )
  shape = source['images'].shape[1:]
  g, d = models.build(config.model, shape, axis_name=ts.AXIS)
  gan = train_state.GAN(g, d, optax.sgd(0.1), optax.sgd(0.1))

  def init(k):
    return train_state.init_state(
      gan,
      config.model.z_dim,
      shape,
      k,
      adaptive=train_state.initial_adaptive(config),
    )

  keys = jax.random.split(jax.random.PRNGKey(0), num_models)
  state = init(keys[0]) if num_models == 1 else jax.vmap(init)(keys)
  fn = ts.make_train_fn(mesh, config, gan, num_models=num_models)
  return jax.device_get(fn(state, source))


def test_augmented_step_is_the_same_on_one_and_four_devices():
  """The transforms are drawn per example from the global step's keys, so
  4 devices compute the 1-device update; p, anchors and losses move."""
  config = _augmented_config()
  source = data.random_images(64, (28, 28, 1))
  state1, metrics1 = _run(1, config, source)
  state4, metrics4 = _run(4, config, source)
  for a, b in zip(jax.tree.leaves(state1), jax.tree.leaves(state4)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  for k in metrics1:
    np.testing.assert_allclose(metrics1[k], metrics4[k], rtol=1e-4, atol=1e-5)
  assert len(set(np.round(metrics1['ada_p'], 6))) > 1  # p moved
  assert np.all(np.isfinite(metrics1['g_grad_norm']))
  assert np.all(metrics1['g_grad_norm'] > 0)


def test_vmapped_augmented_models_equal_each_alone():
  """DiffAugment (with LeCam, CR and bCR) in a vmapped pair: model 1 equals
  model 1 trained alone."""
  config = _augmented_config()
  config.augment.method = 'diffaugment'
  source = data.random_images(64, (28, 28, 1))
  pair, metrics = _run(1, config, source, num_models=2)
  # model 1 alone: its init key is the second of the pair's
  mesh_state = jax.tree.map(lambda a: a[1], pair)
  shape = (28, 28, 1)
  g, d = models.build(config.model, shape, axis_name=ts.AXIS)
  gan = train_state.GAN(g, d, optax.sgd(0.1), optax.sgd(0.1))
  key = jax.random.split(jax.random.PRNGKey(0), 2)[1]
  state = train_state.init_state(
    gan,
    config.model.z_dim,
    shape,
    key,
    adaptive=train_state.initial_adaptive(config),
  )
  mesh = jax.make_mesh(
    (1,), (ts.AXIS,), axis_types=(jax.sharding.AxisType.Auto,)
  )
  alone, metrics1 = jax.device_get(
    ts.make_train_fn(mesh, config, gan)(state, source)
  )
  for a, b in zip(jax.tree.leaves(mesh_state), jax.tree.leaves(alone)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  for k in metrics1:
    np.testing.assert_allclose(metrics[k][1], metrics1[k], rtol=1e-5, atol=1e-6)


RESUME = {
  'data.name': 'mnist_original',
  'data.manual_dir': str(MNIST),
  'checkpoint_every': 100_000,
  'sample_every': 100_000,
  'eval.metrics': '',
  'augment.method': 'ada',
  'augment.ada_kimg': 0.5,
  'augment.ada_interval': 1,
  'lecam.weight': 0.3,
  'lecam.start': 0,
}


def _resume_config(num_steps):
  from gan_jax import config as config_lib

  config = mnist_dcgan.get_config('smoke')
  for field, value in RESUME.items():
    config_lib.set_field(config, field, value)
  config.num_steps = num_steps
  return config


def test_ada_and_lecam_state_resume_exactly_after_sigterm(
  tmp_path, stop_with_sigterm
):
  """SIGTERM mid-run; resuming to N + 20 equals a run of N + 20 updates
  bitwise, p and the anchors included."""
  workdir = tmp_path / 'interrupted'
  cmd = [
    sys.executable,
    'launch.py',
    '--config=experiments/mnist_dcgan.py:smoke',
    f'--workdir={workdir}',
    '--config.num_steps=100000',
  ] + [f'--config.{k}={v}' for k, v in RESUME.items()]
  _, n, _ = stop_with_sigterm(cmd, workdir, rows=3)
  resumed = train.train_and_evaluate(_resume_config(n + 20), str(workdir))
  straight = train.train_and_evaluate(
    _resume_config(n + 20), str(tmp_path / 'straight')
  )
  assert int(resumed.step) == int(straight.step) == n + 20
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert float(straight.adaptive.p) != 0.0  # p moved from its start


def test_probe_scores_training_and_held_out_images():
  """The overfitting probe: D in inference mode on the first n training
  images and the first n test images, each score by its definition."""
  config = mnist_dcgan.get_config('smoke')
  config.data.name, config.data.manual_dir = 'mnist_original', str(MNIST)
  config.data.train_fraction = 0.001  # 60 images
  config.eval.d_images, config.eval.batch_size = 1000, 25  # 3 blocks
  dataset = data.DATASETS[config.data.name]
  train_set = dataset.load(config.data)
  probe = overfitting.probe(config, dataset, train_set)
  train_images = train_set['images']
  test_images, test_labels = dataset.read(config.data, 'test')
  assert len(train_images) == 60
  g, d = models.build(config.model, dataset.shape)
  state = train_state.init_state(
    train_state.GAN(g, d, optax.sgd(0.1), optax.sgd(0.1)),
    config.model.z_dim,
    dataset.shape,
    jax.random.PRNGKey(0),
  )
  scores = probe(state)
  variables = {'params': state.d_params, 'batch_stats': state.d_stats}
  expected = {}
  for name, images in (('train', train_images), ('heldout', test_images[:60])):
    logits = d.apply(
      variables, data.symmetric_pixels(images), None, train=False
    )
    expected[f'd_{name}'] = np.mean(jax.nn.sigmoid(logits))
    expected[f'rt_{name}'] = np.mean(np.sign(logits))
  expected['d_gap'] = expected['d_train'] - expected['d_heldout']
  assert list(scores) == list(overfitting.SCALARS)
  for k, v in expected.items():
    assert scores[k] == pytest.approx(float(v), rel=1e-5, abs=1e-6), k
  config.eval.d_images = 0
  assert overfitting.probe(config, dataset, train_set) is None


def test_overfitting_figure_draws_the_panels_runs_have(tmp_path):
  """overfitting.png: D on training and held-out images, r_t, and p only
  where a run logged it; no figure without the probe's evaluations."""
  from gan_jax.report import figures, read

  def run(p):
    train_rows = [
      {'step': s, 'rt': 0.1 * s} | ({'ada_p': p} if p else {}) for s in (1, 2)
    ]
    evals = [{'step': 2, 'd_train': 0.9, 'd_heldout': 0.4}]
    return read.Run('r', {}, train_rows, evals, None, None)

  groups = [read.Group('a', {}, [run(0.0)]), read.Group('b', {}, [run(0.5)])]
  path = figures.plot_overfitting(groups, str(tmp_path / 'o.png'))
  assert path and os.path.exists(path)
  groups = [read.Group('a', {}, [run(0.0)])]
  assert figures.plot_overfitting(groups, str(tmp_path / 'p.png'))
  bare = read.Run('r', {}, [{'step': 1, 'rt': 0.5}], [], None, None)
  assert (
    figures.plot_overfitting(
      [read.Group('c', {}, [bare])], str(tmp_path / 'q.png')
    )
    is None
  )


def test_cifar10_reference_rows_each_match_one_group_of_the_sweep():
  """Every paper row of experiments/data_efficient_cifar10.py names the
  settings of exactly one group of its sweep (3 seeds each); the smoke
  config validates (the full one needs the FID Inception weights)."""
  from gan_jax import validate
  from experiments import data_efficient_cifar10 as study

  points = study.get_hyper()
  assert len(points) == 18
  rows = study.get_reference()['rows']
  assert len(rows) == 6
  for row in rows:
    where = row['where']
    assert sum(all(p[k] == v for k, v in where.items()) for p in points) == 3
    assert 0 < row['metrics']['fd']['margin'] < row['metrics']['fd']['value']
  validate.validate(study.get_config('smoke'))


def test_a_checkpoint_from_before_the_adaptive_field_restores(tmp_path):
  """A state saved without TrainState.adaptive (earlier versions) restores
  into today's TrainState with adaptive None; a damaged one still fails."""
  g, d = models.build(mnist_dcgan.get_config('smoke').model, (28, 28, 1))
  gan = train_state.GAN(g, d, optax.sgd(0.1), optax.sgd(0.1))
  state = train_state.init_state(gan, 100, (28, 28, 1), jax.random.PRNGKey(0))
  old = {
    k: getattr(state, k) for k in checkpoint._BeforeAdaptive.__annotations__
  }
  mngr = checkpoint.manager(str(tmp_path / 'ckpt'), 1, None, writer=True)
  checkpoint.save(mngr, 7, checkpoint._BeforeAdaptive(**old), force=True)
  checkpoint.close(mngr)
  mngr = checkpoint.manager(str(tmp_path / 'ckpt'), 1, None)
  restored = checkpoint.restore_latest(mngr, state)
  assert restored.adaptive is None
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with_ada = state.replace(
    adaptive=train_state.initial_adaptive(_augmented_config())
  )
  with pytest.raises(errors.CheckpointError):
    checkpoint.restore_latest(mngr, with_ada)
  mngr.close()


@pytest.mark.parametrize(
  'fields, message',
  [
    (
      {'augment.method': 'diffaugmnt'},
      "unknown augment.method 'diffaugmnt'; valid: diffaugment",
    ),
    (
      {'augment.method': 'diffaugment', 'augment.policy': 'color,zoom'},
      "unknown augment.policy 'zoom'",
    ),
    (
      {'augment.method': 'ada', 'augment.ada_ops': ''},
      'augment.ada_ops is empty',
    ),
    (
      {'augment.method': 'ada', 'augment.ada_p': 1.5},
      'ada_p and ada_target must be in [0, 1]',
    ),
    (
      {'lecam.weight': 0.3, 'lecam.decay': 1.0},
      'config.lecam needs weight >= 0, 0 <= decay < 1',
    ),
    ({'consistency.real': -1.0}, 'consistency.real and fake must be >= 0'),
    ({'eval.d_images': -1}, 'eval.d_images must be >= 0'),
  ],
)
def test_bad_settings_are_refused_when_the_config_is_read(fields, message):
  from gan_jax import config as config_lib
  from gan_jax import validate

  config = mnist_dcgan.get_config('smoke')
  for field, value in fields.items():
    config_lib.set_field(config, field, value)
  with pytest.raises(errors.ConfigError, match=re.escape(message)):
    validate.validate(config)


def test_augmentation_needs_images():
  from gan_jax import validate
  from experiments import toy_ring

  config = toy_ring.get_config('smoke')
  config.augment.method = 'diffaugment'
  with pytest.raises(errors.ConfigError, match='not an image dataset'):
    validate.validate(config)
