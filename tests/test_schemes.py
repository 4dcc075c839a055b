"""Each update scheme of gan_jax.train_step against its definition computed
by hand with jax.grad on a tiny MLP GAN (SGD, no dropout, no BatchNorm),
and the scheme options' validation."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from gan_jax import errors, losses, registry, schemes, train, train_state
from gan_jax import updates, validate
from gan_jax import train_step as ts
from experiments import toy_ring

LR = 0.1


def _mesh():
  return jax.make_mesh(
    (1,),
    (ts.AXIS,),
    axis_types=(jax.sharding.AxisType.Auto,),
    devices=jax.devices()[:1],
  )


def _tiny_ring_config(scheme='alternating'):
  c = toy_ring.get_config('smoke')
  c.model.g.hidden, c.model.d.hidden = (8,), (8,)
  c.batch_size = 16
  c.update_scheme = scheme
  return c


class Game:
  """A tiny ring GAN under SGD(LR), one minibatch, and its losses by hand."""

  def __init__(self, scheme, **fields):
    c = _tiny_ring_config(scheme)
    c.update(fields)
    built = train_state.build(c, (2,), axis_name=ts.AXIS)
    g_tx, d_tx = optax.sgd(LR), optax.sgd(LR)
    if scheme == 'optimistic':
      g_tx, d_tx = (
        optax.chain(train_state.optimistic(), t) for t in (g_tx, d_tx)
      )
    self.config, self.g, self.d = c, built.g, built.d
    self.gan = train_state.GAN(built.g, built.d, g_tx, d_tx)
    self.state = train_state.init_state(
      self.gan, 2, (2,), jax.random.PRNGKey(0)
    )
    rng = np.random.default_rng(0)
    self.batch = {
      'real': jnp.asarray(rng.normal(size=(1, 16, 2)), jnp.float32),
      'y_real': jnp.zeros((1, 16), jnp.int32),
      'z': jnp.asarray(rng.normal(size=(1, 16, 2)), jnp.float32),
      'y_fake': jnp.zeros((1, 16), jnp.int32),
    }
    self.loss = losses.get(c.loss)

  def step(self, state=None):
    fn = jax.shard_map(
      functools.partial(
        registry.resolve(schemes.SCHEMES[self.config.update_scheme].step),
        gan=self.gan,
        rules=updates.Rules.of(self.config),
      ),
      mesh=_mesh(),
      in_specs=(P(), P(None, ts.AXIS), P()),
      out_specs=(P(), P()),
    )
    state = self.state if state is None else state
    return jax.jit(fn)(state, self.batch, jax.random.PRNGKey(1))[0]

  def d_of(self, dp, x):
    return self.d.apply({'params': dp}, x, train=False)

  def g_of(self, gp):
    return self.g.apply({'params': gp}, self.batch['z'][0], train=False)

  def l_d(self, dp, gp):
    real = self.batch['real'][0]
    return self.loss.d_loss(self.d_of(dp, real), self.d_of(dp, self.g_of(gp)))

  def l_g(self, dp, gp):
    return self.loss.g_loss(self.d_of(dp, self.g_of(gp)), None)

  def grads(self, dp, gp):
    """(grad_D L_D, grad_G L_G) at (dp, gp)."""
    return jax.grad(self.l_d)(dp, gp), jax.grad(self.l_g, argnums=1)(dp, gp)


def _sgd(p, grad):
  return jax.tree.map(lambda a, b: a - LR * b, p, grad)


def _close(got, want, rtol=1e-5, atol=1e-6):
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _differ(a, b):
  return any(
    np.abs(x - y).max() > 1e-6
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )


def test_simultaneous_step_takes_both_gradients_at_the_old_parameters():
  """D' = D - lr grad_D L_D(D, G) and G' = G - lr grad_G L_G(D, G), both at
  the old (D, G); the alternating step's G gradient is taken at D'."""
  game = Game('simultaneous')
  d0, g0 = game.state.d_params, game.state.g_params
  gd, gg = game.grads(d0, g0)
  want_d, want_g = _sgd(d0, gd), _sgd(g0, gg)
  got = game.step()
  _close((got.d_params, got.g_params), (want_d, want_g))
  alternating = Game('alternating').step()
  _close(alternating.d_params, want_d)
  late_g = _sgd(g0, jax.grad(game.l_g, argnums=1)(want_d, g0))
  _close(alternating.g_params, late_g)
  assert _differ(got.g_params, alternating.g_params)


def test_extragradient_updates_from_the_old_point_with_the_lookaheads_gradients():
  """w' = w - lr v(w); w <- w - lr v(w') (Korpelevich 1976)."""
  game = Game('extragradient')
  d0, g0 = game.state.d_params, game.state.g_params
  gd, gg = game.grads(d0, g0)
  d_half, g_half = _sgd(d0, gd), _sgd(g0, gg)
  gd2, gg2 = game.grads(d_half, g_half)
  got = game.step()
  _close((got.d_params, got.g_params), (_sgd(d0, gd2), _sgd(g0, gg2)))
  assert _differ(got.g_params, _sgd(g0, gg))


def test_optimistic_steps_on_twice_the_gradient_minus_the_last():
  """First step plain SGD; then w <- w - lr (2 g_t - g_(t-1))."""
  game = Game('optimistic')
  d0, g0 = game.state.d_params, game.state.g_params
  gd0, gg0 = game.grads(d0, g0)
  d1, g1 = _sgd(d0, gd0), _sgd(g0, gg0)
  first = game.step()
  _close((first.d_params, first.g_params), (d1, g1))
  gd1, gg1 = game.grads(d1, g1)

  def extrapolate(now, before):
    return jax.tree.map(lambda a, b: 2 * a - b, now, before)

  second = game.step(first)
  _close(
    (second.d_params, second.g_params),
    (_sgd(d1, extrapolate(gd1, gd0)), _sgd(g1, extrapolate(gg1, gg0))),
  )


def test_consensus_descends_gamma_half_squared_norm_of_the_gradients():
  """w <- w - lr (grad + gamma grad_w 1/2 ||grad(w)||^2)."""
  gamma = 0.7
  game = Game('consensus', consensus_gamma=gamma)
  d0, g0 = game.state.d_params, game.state.g_params

  def half_sq(dp, gp):
    return 0.5 * optax.tree.norm(game.grads(dp, gp), squared=True)

  gd, gg = game.grads(d0, g0)
  rd, rg = jax.grad(half_sq, argnums=(0, 1))(d0, g0)
  want_d = _sgd(d0, jax.tree.map(lambda a, b: a + gamma * b, gd, rd))
  want_g = _sgd(g0, jax.tree.map(lambda a, b: a + gamma * b, gg, rg))
  got = game.step()
  _close((got.d_params, got.g_params), (want_d, want_g), rtol=1e-4)
  assert _differ(got.g_params, _sgd(g0, gg))


@pytest.mark.parametrize('k', [0, 1, 2])
def test_unrolled_g_looks_through_k_differentiable_d_steps(k):
  """D' = D - lr grad_D L_D (as simultaneous); G descends
  grad_G L_G(D_k(G), G), D_(i+1)(G) = D_i - lr grad_D L_D(D_i, G);
  k = 0 is the simultaneous step."""
  game = Game('unrolled', unroll_steps=k)
  d0, g0 = game.state.d_params, game.state.g_params

  def unrolled(gp):
    dp = d0
    for _ in range(k):
      dp = _sgd(dp, jax.grad(game.l_d)(dp, gp))
    return game.l_g(dp, gp)

  want_d = _sgd(d0, jax.grad(game.l_d)(d0, g0))
  want_g = _sgd(g0, jax.grad(unrolled)(g0))
  got = game.step()
  _close((got.d_params, got.g_params), (want_d, want_g), rtol=1e-4)
  simultaneous = Game('simultaneous').step()
  assert _differ(got.g_params, simultaneous.g_params) == (k > 0)


def _field(game):
  """updates.game_gradients of the game's first step."""
  g, d = ts._players(game.state)
  fn = functools.partial(
    updates.game_gradients,
    game.gan,
    updates.Rules.of(game.config),
    g,
    d,
    step=0,
  )
  return jax.shard_map(
    lambda batch, key: fn(ts._one(batch), key),
    mesh=_mesh(),
    in_specs=(P(None, ts.AXIS), P()),
    out_specs=P(),
    check_vma=False,
  )(game.batch, jax.random.PRNGKey(1))


def test_shared_fake_pass_scores_g_by_ds_own_pass():
  """With dropout in D and instance noise, shared_fake_pass gives G's loss
  the fake logits of D's own loss (the same masks and noise): L_G equals
  the loss of D's fake logits, and G's gradient is taken through them;
  without it, G's pass draws its own masks and noise."""
  fields = {
    'model': {'d': {'dropout': 0.5}},
    'instance_noise': {'std': 0.3, 'anneal_steps': 0},
  }
  game = Game('simultaneous', shared_fake_pass=True, **fields)
  shared, own = _field(game), _field(Game('simultaneous', **fields))
  g_loss = game.loss.g_loss
  assert float(shared.g_loss) == pytest.approx(
    float(g_loss(shared.d.fake_logits, None)), rel=1e-6
  )
  assert float(own.g_loss) != pytest.approx(
    float(g_loss(own.d.fake_logits, None)), rel=1e-3
  )
  _close(shared.d.grads, own.d.grads)  # D's own step is the same
  assert _differ(shared.g_grads, own.g_grads)


def test_instance_noise_schedule_is_linear_to_zero():
  c = _tiny_ring_config()
  c.instance_noise.std, c.instance_noise.anneal_steps = 0.5, 100
  noise = updates.Rules.of(c).noise
  for step, want in ((0, 0.5), (50, 0.25), (100, 0.0), (400, 0.0)):
    assert float(updates.noise_std(noise, jnp.int32(step))) == pytest.approx(
      want
    )
  c.instance_noise.anneal_steps = 0
  noise = updates.Rules.of(c).noise
  assert updates.noise_std(noise, jnp.int32(10**6)) == 0.5


@pytest.mark.parametrize(
  'fields, match',
  [
    ({'update_scheme': 'leapfrog'}, 'update_scheme'),
    ({'update_scheme': 'extragradient', 'd_steps': 2}, 'd_steps=1'),
    ({'update_scheme': 'unrolled', 'unroll_steps': -1}, 'unroll_steps'),
    ({'consensus_gamma': -1.0}, 'consensus_gamma'),
    ({'shared_fake_pass': True}, 'shared_fake_pass'),
    (
      {'shared_fake_pass': True, 'update_scheme': 'unrolled'},
      'shared_fake_pass',
    ),
    ({'r2_gamma': -1.0}, 'r2_gamma'),
    ({'instance_noise': {'std': -0.1, 'anneal_steps': 0}}, 'instance_noise'),
  ],
)
def test_bad_scheme_options_are_refused(fields, match):
  c = _tiny_ring_config()
  c.update(fields)
  with pytest.raises(errors.ConfigError, match=match):
    validate.validate(c)


def test_optimistic_vmapped_models_resume_exactly(tmp_path):
  """The optimistic scheme's memory (g_(t-1)) is optimizer state: two
  vmapped models (Adam hyper-parameters in a chained state), 20 steps
  straight == 10, a stop, and 10 more."""

  def config(steps):
    c = _tiny_ring_config('optimistic')
    c.num_models, c.num_steps, c.steps_per_dispatch = 2, steps, 5
    c.log_every = c.sample_every = c.checkpoint_every = 5
    c.eval.every, c.eval.metrics, c.eval.best_metric = 0, '', ''
    return c

  straight = train.train_and_evaluate(config(20), str(tmp_path / 'straight'))
  train.train_and_evaluate(config(10), str(tmp_path / 'resumed'))
  resumed = train.train_and_evaluate(config(20), str(tmp_path / 'resumed'))
  assert int(resumed.step[0]) == 20
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  previous = straight.g_opt[0].previous
  assert any(np.abs(np.asarray(x)).max() > 0 for x in jax.tree.leaves(previous))
