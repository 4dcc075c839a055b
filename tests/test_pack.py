"""PacGAN packing (Lin et al. 2018): D decides on m samples at once.

pack(x, m) maps samples (B, *s, C) to packs (B/m, *s, m*C), pack j holding
samples jm .. jm+m-1 side by side on the last axis; a packed D is the
family's D applied to packs, so its first layer has m times the inputs and
it gives B/m logits (losses and d_real/d_fake are means over packs).
Gradient penalties act on D's input space, the packs. m = 1 leaves D and
the update bit for bit as they were.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import data, losses, models, sweep, train
from gan_jax import train_state, train_step as ts
from gan_jax import errors, validate
from gan_jax.models import dcgan, mlp
from experiments import mode_collapse, toy_ring


def test_pack_concatenates_consecutive_samples_and_unpack_inverts():
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 4, 4, 3))
  packed = models.pack(x, 3)
  assert packed.shape == (2, 4, 4, 9)
  want = jnp.stack(
    [jnp.concatenate([x[3 * j + k] for k in range(3)], -1) for j in (0, 1)]
  )
  np.testing.assert_array_equal(packed, want)
  np.testing.assert_array_equal(models.unpack(packed, 3), x)
  assert models.pack(x, 1) is x and models.unpack(x, 1) is x


@pytest.mark.parametrize(
  'name, cls', [('mlp', mlp.Discriminator), ('dcgan', dcgan.Discriminator)]
)
def test_pack1_builds_the_family_discriminator(name, cls):
  config = toy_ring.get_config('smoke')
  config.model.name = name
  config.model.g, config.model.d = {}, {}
  _, d = models.build(config.model, (28, 28, 1))
  assert type(d) is cls and models.pack_size(d) == 1


def _train(config, d=None, steps=3):
  """(state, metrics) after `steps` iterations on one device on the ring.

  D is models.build's unless `d` is given.
  """
  mesh = jax.make_mesh(
    (1,),
    (ts.AXIS,),
    axis_types=(jax.sharding.AxisType.Auto,),
    devices=jax.devices()[:1],
  )
  g, built = models.build(config.model, (2,), axis_name=ts.AXIS)
  d = built if d is None else d
  g_tx, d_tx = train_state.make_optimizers(config.optim)
  state = train_state.init_state(
    train_state.GAN(g, d, g_tx, d_tx),
    config.model.z_dim,
    (2,),
    jax.random.PRNGKey(0),
  )
  config.steps_per_dispatch = steps
  source = data.DATASETS['ring'].load(config.data)
  fn = ts.make_train_fn(mesh, config, train_state.GAN(g, d, g_tx, d_tx))
  return jax.device_get(fn(state, source))


def _wgan_gp_r1_config():
  config = toy_ring.get_config('loss=wasserstein_gp,smoke')
  config.r1_gamma = 1.0
  return config


def test_pack1_is_bit_identical_to_no_packing():
  """pack=1, a config without the field (an older run's), and the wrapper
  Packed(D, 1) all give the same bits after 3 steps of WGAN-GP with R1."""
  config = _wgan_gp_r1_config()
  assert config.model.pack == 1
  state, metrics = _train(config)
  old = _wgan_gp_r1_config()
  del old.model['pack']
  bare = models.build(config.model, (2,), axis_name=ts.AXIS)[1]
  for other_state, other_metrics in (
    _train(old),
    _train(_wgan_gp_r1_config(), d=models.Packed(bare, 1)),
  ):
    assert jax.tree.structure(state) == jax.tree.structure(other_state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(other_state)):
      np.testing.assert_array_equal(a, b)
    for k in metrics:
      np.testing.assert_array_equal(metrics[k], other_metrics[k])


def test_packed_mlp_widens_the_first_layer_and_scores_concatenated_pairs():
  config = toy_ring.get_config('smoke')
  config.model.pack = 2
  g, d = models.build(config.model, (2,))
  assert isinstance(d, models.Packed) and models.pack_size(d) == 2
  params = train_state.init_state(
    train_state.GAN(g, d, *train_state.make_optimizers(config.optim)),
    config.model.z_dim,
    (2,),
    jax.random.PRNGKey(0),
  ).d_params
  bare = d.d.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))['params']
  # The family's tree, not nested under the wrapper; only Dense_0 is wider.
  assert jax.tree.structure(params) == jax.tree.structure(bare)
  shapes = jax.tree.map(jnp.shape, params)
  bare_shapes = jax.tree.map(jnp.shape, bare)
  assert shapes['Dense_0']['kernel'] == (2 * 2, config.model.d.hidden[0])
  del shapes['Dense_0'], bare_shapes['Dense_0']
  assert shapes == bare_shapes
  x = jax.random.normal(jax.random.PRNGKey(1), (6, 2))
  logits = d.apply({'params': params}, x, train=False)
  pairs = jnp.concatenate([x[0::2], x[1::2]], axis=-1)  # (x0|x1), (x2|x3), ..
  want = d.d.apply({'params': params}, pairs, train=False)
  assert logits.shape == (3,)
  np.testing.assert_array_equal(logits, want)


def test_packed_conv_discriminator_stacks_channels():
  config = toy_ring.get_config('smoke')
  config.model.name, config.model.pack = 'dcgan', 4
  config.model.g, config.model.d = {}, {}
  _, d = models.build(config.model, (28, 28, 1))
  v = jax.eval_shape(
    lambda: d.init(jax.random.PRNGKey(0), jnp.zeros((4, 28, 28, 1)))
  )
  assert v['params']['DownConv_0']['kernel'].shape[2] == 4  # 4 x 1 channel
  out = jax.eval_shape(
    lambda v: d.apply(v, jnp.zeros((8, 28, 28, 1)), mutable=['batch_stats']),
    v,
  )
  assert out[0].shape == (2,)


def test_penalties_act_on_packs(monkeypatch):
  """With pack=2, WGAN-GP and R1 get real/fake packs (b/2, 4) and a critic
  giving one value per pack: eps is drawn per pack and norms are those of
  the gradient with respect to a whole pack. For a linear D(p) = w.p + c (no
  hidden layer) the gradient is w at every pack, so the first step's
  penalties are 10 (||w|| - 1)^2 and gamma/2 ||w||^2 with w all 4 weights
  (per-sample norms would split w into its two halves)."""
  seen, values = [], {}
  gp, r1 = losses.PENALTIES['gradient_penalty'], losses.r1_penalty

  def record(name, out):
    jax.debug.callback(lambda v: values.setdefault(name, float(v)), out)
    return out

  def recording_gp(critic, real, fake, key, weight):
    seen.append(('gp', real.shape, fake.shape, critic(real).shape))
    return record('gp', gp(critic, real, fake, key, weight))

  def recording_r1(critic, real, gamma):
    seen.append(('r1', real.shape, critic(real).shape))
    return record('r1', r1(critic, real, gamma))

  monkeypatch.setitem(losses.PENALTIES, 'gradient_penalty', recording_gp)
  monkeypatch.setattr(losses, 'r1_penalty', recording_r1)
  config = _wgan_gp_r1_config()
  config.model.pack, config.model.d.hidden = 2, ()
  g, d = models.build(config.model, (2,))
  w = train_state.init_state(
    train_state.GAN(g, d, *train_state.make_optimizers(config.optim)),
    config.model.z_dim,
    (2,),
    jax.random.PRNGKey(0),
  ).d_params['Dense_0']['kernel'][:, 0]
  _, metrics = _train(config, steps=1)
  b = config.batch_size
  assert ('gp', (b // 2, 4), (b // 2, 4), (b // 2,)) in seen
  assert ('r1', (b // 2, 4), (b // 2,)) in seen
  norm = float(jnp.linalg.norm(w))
  np.testing.assert_allclose(values['gp'], 10 * (norm - 1) ** 2, rtol=1e-5)
  np.testing.assert_allclose(values['r1'], 0.5 * norm**2, rtol=1e-5)
  halves = jnp.linalg.norm(w.reshape(2, 2), axis=1)
  assert abs(values['gp'] - 10 * float(jnp.mean((halves - 1) ** 2))) > 1e-3
  assert all(np.isfinite(v).all() for v in metrics.values())


@pytest.mark.parametrize('loss', ['non_saturating', 'wasserstein_gp'])
def test_mode_collapse_smoke_trains_with_pack2(loss, tmp_path):
  """The study's smoke point with PacGAN2 runs through train_and_evaluate
  (on the 4 test devices) and ends with its evaluation."""
  config = mode_collapse.get_config(f'loss={loss},pack=2,smoke')
  config.num_steps = config.log_every = 100
  config.sample_every = config.checkpoint_every = 100
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 100
  kernel = state.d_params['Dense_0']['kernel']
  assert kernel.shape[0] == 2 * 2
  rows = [json.loads(line) for line in (tmp_path / 'metrics.jsonl').open()]
  assert all(np.isfinite(v) for r in rows for v in r.values())
  assert 0 < rows[-2]['d_real'] < 1
  results = json.loads((tmp_path / 'results.json').read_text())['metrics']
  assert {'modes', 'high_quality', 'reverse_kl'} <= set(results)


def test_mode_collapse_sweep_points_are_valid():
  """Smoke: ring x (GAN, PacGAN2) x 2 seeds, seed varying fastest; the full
  sweep has 2 datasets x 4 packings x 10 seeds, 2 x (4 + 4) x 10 with the
  other objectives, the CPU one 2 x 2 x 3; every smoke point validates."""
  points = mode_collapse.get_hyper('smoke')
  assert len(points) == 4 and len(mode_collapse.get_hyper()) == 80
  assert len(mode_collapse.get_hyper('objectives')) == 160
  assert len(mode_collapse.get_hyper('cpu')) == 12
  assert [list(p)[-1] for p in points] == ['seed'] * 4
  assert [p['seed'] for p in points] == [0, 1] * 2
  assert [p['model.pack'] for p in points] == [1, 1, 2, 2]
  base = mode_collapse.get_config('smoke')
  for p in points:
    c = sweep.apply(base, p)
    validate.validate(c)
    assert c.batch_size == mode_collapse.SMOKE_PACKS_PER_BATCH * c.model.pack
    assert c.model.g_bn_per_slot and c.model.g.bn_epsilon == 1e-4


@pytest.mark.parametrize(
  'pack, batch_size, message',
  [
    (0, 32, 'config.model.pack must be an integer >= 1, got 0'),
    (-2, 32, 'config.model.pack must be an integer >= 1, got -2'),
    (3, 32, 'use a batch_size that is a multiple of 12'),
    (2, 36, 'use a batch_size that is a multiple of 8'),
  ],
)
def test_bad_pack_is_refused(pack, batch_size, message):
  assert jax.device_count() == 4
  config = toy_ring.get_config('smoke')
  config.model.pack, config.batch_size = pack, batch_size
  with pytest.raises(errors.ConfigError, match=message):
    validate.validate(config)
