"""The GAN iteration (an update scheme) and its data-parallel compilation.

A scheme is a composition of the pieces in gan_jax/updates.py, chosen by
`config.update_scheme` from SCHEMES:
  alternating   Goodfellow et al. 2014, Algorithm 1: `d_steps` D updates on
                (real, G(z)), then one G update through the updated D.
  simultaneous  both players' gradients at the same parameters from one
                minibatch (the released code of Goodfellow et al. 2014;
                PacGAN): D's step and G's step both see the old D and G.
All randomness of a step comes from `jax.random.fold_in(state.rng,
state.step)`, so a resumed run draws the same numbers as an uninterrupted one.
"""

import functools

import jax
from jax.sharding import PartitionSpec as P

from gan_jax import data, sampling, updates
from gan_jax.train_state import GAN, TrainState
from gan_jax.updates import AXIS, Player


def _players(state: TrainState) -> tuple[Player, Player]:
  """(G, D) slices of the state."""
  g = Player(state.g_params, state.g_stats, state.g_opt)
  return g, Player(state.d_params, state.d_stats, state.d_opt)


def _next_state(state, g: Player, d: Player, d_stats, config) -> TrainState:
  """The state after an iteration: G, D (with `d_stats`), EMA, step + 1."""
  return state.replace(
    step=state.step + 1,
    g_params=g.params,
    g_stats=g.stats,
    d_params=d.params,
    d_stats=d_stats,
    g_opt=g.opt,
    d_opt=d.opt,
    g_ema=updates.ema(config, state.g_ema, g.params),
  )


def simultaneous_step(state: TrainState, batch, key, *, gan: GAN, config):
  """One iteration in which D and G both step from the same (old) parameters.

  batch: as alternating_step's with d_steps = 1. D's update is d_update on
  (real, G(z)); G's is g_update through the old D (keys fold_in(key, 0) and
  fold_in(key, 1)). D keeps the statistics of its own update's forwards.
  Returns (new state, updates.metrics).
  """
  key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))
  g, d = _players(state)
  real, y_real, z, y_fake = (
    batch[k][0] for k in ('real', 'y_real', 'z', 'y_fake')
  )
  fake, g_vjp, g_stats = updates.generate(
    gan, config, g.params, g.stats, z, y_fake
  )
  g = g.replace(stats=g_stats)
  new_d, d_out = updates.d_update(
    gan, config, d, real, y_real, fake, y_fake, jax.random.fold_in(key, 0)
  )
  new_g, _, g_loss, g_grads = updates.g_update(
    gan,
    config,
    g,
    fake,
    g_vjp,
    y_fake,
    d,
    d_out.real_logits,
    jax.random.fold_in(key, 1),
  )
  metrics = updates.metrics(d_out, g_loss, g_grads, y_real, y_fake)
  return _next_state(state, new_g, new_d, new_d.stats, config), metrics


def alternating_step(state: TrainState, batch, key, *, gan: GAN, config):
  """One GAN iteration on this device's shard; call inside shard_map.

  batch: {'real': (d_steps, b, *shape) in [-1, 1], 'y_real': (d_steps, b)
    its labels, 'z': (d_steps, b, z_dim), 'y_fake': (d_steps, b) labels
    asked of G}, b the per-device batch. key: per-step key (dropout, penalty
    points). Labels matter only to class-conditional models.
  D step i uses fold_in(key, i), the G update fold_in(key, d_steps). The
  generator forward of the last D step is reused for the G update through
  its VJP: G's parameters have not changed in between. Then
  g_ema <- decay * g_ema + (1 - decay) * g_params if decay > 0.
  Returns (new state, updates.metrics of the last D step and the G update).
  """
  key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))
  g, d = _players(state)
  n = batch['z'].shape[0]
  for i in range(n):
    fake, g_vjp, g_stats = updates.generate(
      gan, config, g.params, g.stats, batch['z'][i], batch['y_fake'][i]
    )
    g = g.replace(stats=g_stats)
    d, d_out = updates.d_update(
      gan,
      config,
      d,
      batch['real'][i],
      batch['y_real'][i],
      fake,
      batch['y_fake'][i],
      jax.random.fold_in(key, i),
    )
  y_fake = batch['y_fake'][n - 1]
  g, d_stats, g_loss, g_grads = updates.g_update(
    gan,
    config,
    g,
    fake,
    g_vjp,
    y_fake,
    d,
    d_out.real_logits,
    jax.random.fold_in(key, n),
  )
  metrics = updates.metrics(
    d_out, g_loss, g_grads, batch['y_real'][n - 1], y_fake
  )
  return _next_state(state, g, d, d_stats, config), metrics


SCHEMES = {'alternating': alternating_step, 'simultaneous': simultaneous_step}


def make_train_fn(mesh, config, gan: GAN, num_models=1):
  """Compiles `(state, source) -> (state, metrics)` for `steps_per_dispatch`.

  With num_models = K > 1, every leaf of `state` has a leading model axis
  (K, ...) and the K models are trained in one program by `jax.vmap` over
  it, each from its own rng and optimizer hyper-parameters; metrics are then
  (K, steps_per_dispatch).

  source: the dataset's device arrays (`DATASETS[name].load`), replicated on
  every device. Each step draws its global batch (examples with their
  labels, z and the labels y ~ U{0..K-1} asked of G) from
  fold_in(state.rng, state.step) and shards it along `data`; parameters stay
  replicated. The result does not depend on the number of devices (except
  through dropout and penalty points, drawn per device).
  metrics: each of shape (steps_per_dispatch,).
  """
  dataset = data.DATASETS[config.data.name]
  prior = config.model.get('z_prior', 'normal')
  unit = config.data.get('unit_range', False)
  scheme = SCHEMES[config.get('update_scheme', 'alternating')]
  step_fn = jax.shard_map(
    functools.partial(scheme, gan=gan, config=config),
    mesh=mesh,
    in_specs=(P(), P(None, AXIS), P()),
    out_specs=(P(), P()),
  )

  def one(state, source):
    key = jax.random.fold_in(state.rng, state.step)
    k_data, k_z, k_step = jax.random.split(key, 3)
    n, b = config.d_steps, config.batch_size
    real, y_real = jax.vmap(lambda k: dataset.sample(source, k, b, unit))(
      jax.random.split(k_data, n)
    )
    z = sampling.noise(k_z, (n, b, config.model.z_dim), prior)
    y_fake = jax.random.randint(  # G's labels: y ~ U{0..K-1}
      jax.random.fold_in(k_z, 1), (n, b), 0, dataset.num_classes
    )
    batch = {'real': real, 'y_real': y_real, 'z': z, 'y_fake': y_fake}
    return step_fn(state, batch, k_step)

  def many(state, source):
    return jax.lax.scan(
      lambda s, _: one(s, source), state, length=config.steps_per_dispatch
    )

  if num_models > 1:
    many = jax.vmap(many, in_axes=(0, None))
  return jax.jit(many, donate_argnums=0)
