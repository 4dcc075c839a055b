"""The built-in update schemes' steps and their data-parallel compilation.

Each step is one iteration of a scheme of gan_jax.schemes (where the
schemes are described and registered), composed of the pieces in
gan_jax/updates.py. All schemes but alternating take d_steps = 1. All
randomness of a step comes from `jax.random.fold_in(state.rng, state.step)`
(and with epoch batching from the epoch permutations of state.rng,
data.epoch_indices), so a resumed run draws the same numbers as an
uninterrupted one.
"""

import functools

import jax
from jax.sharding import PartitionSpec as P

from gan_jax import augment, data, registry, schemes, updates
from gan_jax.train_state import GAN, TrainState
from gan_jax.updates import AXIS, Player, Rules


def _players(state: TrainState) -> tuple[Player, Player]:
  """(G, D) slices of the state."""
  g = Player(state.g_params, state.g_stats, state.g_opt)
  d = Player(state.d_params, state.d_stats, state.d_opt, state.adaptive)
  return g, d


def _next_state(state, g: Player, d: Player, d_stats, rules) -> TrainState:
  """The state after an iteration: G, D (with `d_stats` and its adaptive
  memory), EMA, step + 1."""
  return state.replace(
    step=state.step + 1,
    g_params=g.params,
    g_stats=g.stats,
    d_params=d.params,
    d_stats=d_stats,
    g_opt=g.opt,
    d_opt=d.opt,
    g_ema=updates.ema(rules, state.g_ema, g.params, state.step),
    adaptive=d.adaptive,
  )


def _one(batch) -> dict:
  """The single minibatch of a d_steps = 1 batch: (1, b, ...) -> (b, ...)."""
  return {k: v[0] for k, v in batch.items()}


def _step_both(gan, rules, state, g, d, g_grads, d_grads, field, batch):
  """(new state, metrics): G and D each take one optimizer step from the
  state's parameters, on g_grads and d_grads."""
  new_g = updates.g_apply(gan, g.replace(stats=field.g_stats), g_grads)
  new_d = updates.d_apply(
    gan, rules, d, d_grads, field.d_stats, field.d.adaptive
  )
  metrics = updates.metrics(
    field.d, field.g_loss, g_grads, batch['y_real'], batch['y_fake']
  )
  return _next_state(state, new_g, new_d, new_d.stats, rules), metrics


def simultaneous_step(state: TrainState, batch, key, *, gan: GAN, rules: Rules):
  """One iteration in which D and G both step from the same (old) parameters.

  batch: as alternating_step's with d_steps = 1. D's gradient uses
  fold_in(key, 0), G's fold_in(key, 1) (updates.game_gradients). D keeps
  the statistics of its own loss's forwards. Returns (new state,
  updates.metrics).
  """
  key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))
  g, d = _players(state)
  batch = _one(batch)
  field = updates.game_gradients(gan, rules, g, d, batch, key, state.step)
  return _step_both(
    gan, rules, state, g, d, field.g_grads, field.d.grads, field, batch
  )


def extragradient_step(
  state: TrainState, batch, key, *, gan: GAN, rules: Rules
):
  """w' = apply(w, v(w)); w <- apply(w, v(w')) with w's optimizer states, on
  one minibatch and one key. Metrics are those at w."""
  key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))
  g, d = _players(state)
  batch = _one(batch)
  field = updates.game_gradients(gan, rules, g, d, batch, key, state.step)
  g_ahead = updates.g_apply(gan, g, field.g_grads)
  d_ahead = updates.d_apply(gan, rules, d, field.d.grads, d.stats, d.adaptive)
  ahead = updates.game_gradients(
    gan, rules, g_ahead, d_ahead, batch, key, state.step
  )
  new_g = updates.g_apply(gan, g.replace(stats=ahead.g_stats), ahead.g_grads)
  new_d = updates.d_apply(
    gan, rules, d, ahead.d.grads, ahead.d_stats, field.d.adaptive
  )
  metrics = updates.metrics(
    field.d, field.g_loss, field.g_grads, batch['y_real'], batch['y_fake']
  )
  return _next_state(state, new_g, new_d, new_d.stats, rules), metrics


def consensus_step(state: TrainState, batch, key, *, gan: GAN, rules: Rules):
  """Simultaneous steps on updates.consensus_gradients."""
  key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))
  g, d = _players(state)
  batch = _one(batch)
  g_grads, d_grads, field = updates.consensus_gradients(
    gan, rules, g, d, batch, key, state.step
  )
  return _step_both(gan, rules, state, g, d, g_grads, d_grads, field, batch)


def unrolled_step(state: TrainState, batch, key, *, gan: GAN, rules: Rules):
  """D steps as in simultaneous; G descends grad_G L_G(G, D_k(G)), the
  D_i+1 = d_update(D_i) on G(z) of the same G parameters (with D's key, so
  D_1 is D's own update), differentiated through; metrics report L_G at
  D_k."""
  key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))
  g, d = _players(state)
  batch = _one(batch)
  field = updates.game_gradients(gan, rules, g, d, batch, key, state.step)
  if rules.unroll_steps == 0:
    return _step_both(
      gan, rules, state, g, d, field.g_grads, field.d.grads, field, batch
    )
  real, y_real, z, y_fake = (
    batch[k] for k in ('real', 'y_real', 'z', 'y_fake')
  )
  aug = batch.get('aug')
  k_d, k_g = jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)

  def unrolled_loss(g_params):
    fake, _ = updates.apply_g(gan, rules, g_params, g.stats, z, y_fake)
    d_k = d
    for _ in range(rules.unroll_steps):
      d_k, _ = updates.d_update(
        gan, rules, d_k, real, y_real, fake, y_fake, k_d, state.step, aug
      )
    real_logits = None
    if rules.loss.g_needs_real:
      seen = updates.transform(
        rules, real, aug, augment.REAL, updates.ada_p(d_k.adaptive)
      )
      (real_logits, _), _ = updates.apply_d(
        gan, rules, d_k.params, d_k.stats, seen, y_real, k_d
      )
    loss, _ = updates.g_loss(
      gan, rules, fake, y_fake, d_k, real_logits, k_g, state.step, aug=aug
    )
    return loss

  loss, g_grads = jax.value_and_grad(unrolled_loss)(g.params)
  return _step_both(
    gan,
    rules,
    state,
    g,
    d,
    g_grads,
    field.d.grads,
    field.replace(g_loss=loss),
    batch,
  )


def alternating_step(state: TrainState, batch, key, *, gan: GAN, rules: Rules):
  """One GAN iteration on this device's shard; call inside shard_map.

  batch: {'real': (d_steps, b, *shape) in [-1, 1], 'y_real': (d_steps, b)
    its labels, 'z': (d_steps, b, z_dim), 'y_fake': (d_steps, b) labels
    asked of G, with augmentation 'aug': (d_steps, b, 2) a key per example},
    b the per-device batch. key: per-step key (dropout, penalty
    points, instance noise). Labels matter only to class-conditional models.
  D step i uses fold_in(key, i), the G update fold_in(key, d_steps). The
  generator forward of the last D step is reused for the G update through
  its VJP: G's parameters have not changed in between. Then
  g_ema <- decay * g_ema + (1 - decay) * g_params if decay > 0 (updates.ema).
  Returns (new state, updates.metrics of the last D step and the G update).
  """
  key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))
  g, d = _players(state)
  n = batch['z'].shape[0]
  aug = batch.get('aug', [None] * n)
  for i in range(n):
    fake, g_vjp, g_stats = updates.generate(
      gan, rules, g.params, g.stats, batch['z'][i], batch['y_fake'][i]
    )
    g = g.replace(stats=g_stats)
    d, d_out = updates.d_update(
      gan,
      rules,
      d,
      batch['real'][i],
      batch['y_real'][i],
      fake,
      batch['y_fake'][i],
      jax.random.fold_in(key, i),
      state.step,
      aug[i],
    )
  y_fake = batch['y_fake'][n - 1]
  g, d_stats, g_loss, g_grads = updates.g_update(
    gan,
    rules,
    g,
    fake,
    g_vjp,
    y_fake,
    d,
    d_out.real_logits,
    jax.random.fold_in(key, n),
    state.step,
    aug[n - 1],
  )
  metrics = updates.metrics(
    d_out, g_loss, g_grads, batch['y_real'][n - 1], y_fake
  )
  return _next_state(state, g, d, d_stats, rules), metrics


def sharded_step(mesh, config, gan: GAN):
  """config.update_scheme's step over `mesh`: (state, batch, key) ->
  (state, metrics), batch sharded on its second axis (the examples),
  state and key replicated. Not jitted."""
  scheme = registry.resolve(schemes.SCHEMES[config.update_scheme].step)
  return jax.shard_map(
    functools.partial(scheme, gan=gan, rules=Rules.of(config)),
    mesh=mesh,
    in_specs=(P(), P(None, AXIS), P()),
    out_specs=(P(), P()),
  )


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
  replicated. With config.data.batching = 'epochs' the examples are instead
  those of the step's d_steps global batches in the epoch stream of
  state.rng (data.epoch_indices: batch t = step * d_steps + i takes
  positions [t B, (t + 1) B)), drawn for the whole dispatch at its start.
  The result does not depend on the number of devices (except
  through dropout, penalty points and instance noise, drawn per device).
  metrics: each of shape (steps_per_dispatch,). Matrix products run at
  config.matmul_precision.
  """
  step_fn = sharded_step(mesh, config, gan)

  def one(state, source, idx):
    key = jax.random.fold_in(state.rng, state.step)
    k_batch, k_step = data.draw_keys(key)
    return step_fn(state, data.draw_batch(config, source, k_batch, idx), k_step)

  def many(state, source):
    shape = (config.steps_per_dispatch, config.d_steps, config.batch_size)
    idx = None  # epochs: (steps, d_steps, B) indices, one (d_steps, B) a step
    if config.data.batching == 'epochs':
      start = state.step * config.d_steps * config.batch_size
      n = source['labels'].shape[0]
      idx = data.epoch_indices(state.rng, start, shape, n)
    with jax.default_matmul_precision(config.matmul_precision):
      return jax.lax.scan(
        lambda s, i: one(s, source, i), state, idx, length=shape[0]
      )

  if num_models > 1:
    many = jax.vmap(many, in_axes=(0, None))
  return jax.jit(many, donate_argnums=0)
