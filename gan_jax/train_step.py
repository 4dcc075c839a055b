"""The pure GAN update and its data-parallel, multi-step compilation.

One iteration (Goodfellow et al. 2014, Algorithm 1): `d_steps` discriminator
updates on (real, G(z)), then one generator update. All randomness of a step
comes from `jax.random.fold_in(state.rng, state.step)`, so a resumed run draws
the same numbers as an uninterrupted one.
"""

import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import PartitionSpec as P

from gan_jax import data, losses, models
from gan_jax.models import conditional

AXIS = 'data'


@flax.struct.dataclass
class TrainState:
  """Everything a step reads and writes; one pytree, checkpointed whole."""

  step: jax.Array  # int32 scalar: generator updates done
  rng: jax.Array  # uint32 (2,) base key; step keys are fold_in(rng, step)
  g_params: Any
  g_stats: Any  # generator BatchNorm running statistics
  d_params: Any
  d_stats: Any  # discriminator BatchNorm / spectral-norm statistics
  g_opt: Any
  d_opt: Any
  g_ema: Any  # EMA of g_params (config.ema_decay > 0), else None


OPTIM_FIELDS = (('lr', 'learning_rate'), ('b1', 'b1'), ('b2', 'b2'))


def _adam_hparams(optim, net) -> dict:
  """optax.adam's arguments for `net` ('g' or 'd'): its own or the shared."""
  return {
    name: optim[k] if optim[f'{net}_{k}'] is None else optim[f'{net}_{k}']
    for k, name in OPTIM_FIELDS
  }


def make_optimizers(optim):
  """Adam for G and D; `optim.g_lr` etc. override the shared lr/b1/b2.

  The learning rate and betas live in the optimizer state
  (`optax.inject_hyperparams`), so models vmapped in one program can
  each have their own (`set_hyperparameters`).
  """
  adam = optax.inject_hyperparams(optax.adam)
  return adam(**_adam_hparams(optim, 'g')), adam(**_adam_hparams(optim, 'd'))


def set_hyperparameters(state: 'TrainState', optim) -> 'TrainState':
  """Writes the lr/b1/b2 of config.optim into the optimizer states."""

  def put(opt, net):
    hp = dict(opt.hyperparams)
    for name, value in _adam_hparams(optim, net).items():
      hp[name] = jnp.full_like(hp[name], value)
    return opt._replace(hyperparams=hp)

  return state.replace(g_opt=put(state.g_opt, 'g'), d_opt=put(state.d_opt, 'd'))


def init_state(g, d, g_tx, d_tx, z_dim, shape, key, ema=False) -> TrainState:
  """Initial parameters, optimizer states and base key from `key`.

  D is initialised on one pack (one example unless D is models.Packed).
  """
  k_g, k_d, k_rng = jax.random.split(key, 3)
  g_vars, d_vars = models.init_variables(g, d, z_dim, shape, k_g, k_d)
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    rng=k_rng,
    g_params=g_vars['params'],
    g_stats=g_vars.get('batch_stats', {}),
    d_params=d_vars['params'],
    d_stats=d_vars.get('batch_stats', {}),
    g_opt=g_tx.init(g_vars['params']),
    d_opt=d_tx.init(d_vars['params']),
    g_ema=jax.tree.map(jnp.array, g_vars['params']) if ema else None,
  )


def _casts(compute_dtype: str):
  """(low, full): pytree casts of floating leaves to `compute_dtype` and back
  to float32; identities for float32."""
  if compute_dtype == 'float32':
    return (lambda t: t), (lambda t: t)

  def cast(dtype):
    def leaf(x):
      floating = jnp.issubdtype(jnp.result_type(x), jnp.floating)
      return x.astype(dtype) if floating else x

    return lambda tree: jax.tree.map(leaf, tree)

  return cast(jnp.dtype(compute_dtype)), cast(jnp.float32)


def train_step(state: TrainState, batch, key, *, g, d, g_tx, d_tx, config):
  """One GAN iteration on this device's shard; call inside shard_map.

  batch: {'real': (d_steps, b, *shape) in [-1, 1], 'y_real': (d_steps, b)
    its labels, 'z': (d_steps, b, z_dim), 'y_fake': (d_steps, b) labels
    asked of G}, b the per-device batch. key: per-step key (dropout, penalty
    points). Labels matter only to class-conditional models.
  D minimises loss.d_loss + penalty + R1, G minimises loss.g_loss, with
    penalty = w * PENALTIES[loss.penalty] (WGAN-GP, DRAGAN),
    R1 = gamma/2 E_x ||grad_x D(x)||^2 (Mescheder et al. 2018),
    both of the critic x -> D(x, y_real); an AC-GAN D (Odena et al. 2017)
    adds ac_weight * (CE(c(x), y_real) + CE(c(G(z, y)), y)) to D's loss and
    ac_weight * CE(c(G(z, y)), y) to G's, c its class logits;
  then D's weights are clipped to [-c, c] if c > 0 (Arjovsky et al. 2017), and
  g_ema <- decay * g_ema + (1 - decay) * g_params if decay > 0.
  Each loss is the `lax.pmean` over `data` of the per-device losses, and
  BatchNorm statistics are pmean'd too, so the step differentiates the
  global-batch objective: JAX transposes the pmean of the loss into the
  all-reduce (average) of the per-device gradients of replicated parameters.
  (An explicit pmean of per-device gradients would count them twice under
  shard_map's replication checking, which already sums them.)
  With config.compute_dtype 'bfloat16', G and D run on bfloat16 copies of
  their parameters and inputs (flax computes in its inputs' dtype; BatchNorm
  statistics in float32) and their outputs are cast back to float32, so the
  losses, gradients, optimizer and statistics are float32.
  The generator forward of the last D step is reused for the G update
  through `jax.vjp`: G's parameters have not changed in between, so the
  gradient is the same as a fresh forward.
  With a PacGAN discriminator (models.Packed, m = pack > 1; Lin et al. 2018)
  logits are one per pack of m samples, so losses and d_real/d_fake are means
  over packs; penalties and R1 act on D's input space, the packs: their
  points are packs (WGAN-GP interpolates a real and a fake pack with one
  eps) and their norms those of the gradient with respect to a whole pack.
  Returns (new state, metrics averaged over devices); with an AC-GAN D the
  metrics add the top-1 accuracy of its classifier (last D step, before its
  update) on the real batch (ac_real_accuracy) and on G's samples against
  the labels asked of G (ac_fake_accuracy).
  """
  loss = losses.get(config.loss)
  weight = config.penalty_weight
  weight = loss.penalty_weight if weight is None else weight
  key = jax.random.fold_in(key, jax.lax.axis_index(AXIS))
  d_params, d_stats, d_opt = state.d_params, state.d_stats, state.d_opt
  g_stats = state.g_stats
  m = models.pack_size(d)
  low, full = _casts(config.get('compute_dtype', 'float32'))

  def apply_d(params, stats, x, y, rng):
    """-> ((logits (B,), class logits (B, K) or None), new stats)."""
    out, new = d.apply(
      {'params': low(params), 'batch_stats': stats},
      low(x),
      y,
      train=True,
      mutable=['batch_stats'],
      rngs={'dropout': rng},
    )
    return conditional.split(full(out)), new.get('batch_stats', stats)

  def class_loss(class_logits, y):
    """ac_weight * mean CE (0 without an AC-GAN classifier head)."""
    if class_logits is None:
      return 0.0
    ce = optax.softmax_cross_entropy_with_integer_labels(class_logits, y)
    return config.ac_weight * jnp.mean(ce)

  def apply_g(params, stats, z, y):
    fake, new = g.apply(
      {'params': low(params), 'batch_stats': stats},
      low(z),
      y,
      train=True,
      mutable=['batch_stats'],
    )
    return full(fake), new.get('batch_stats', stats)

  for i in range(batch['z'].shape[0]):
    k_real, k_fake, k_pen = jax.random.split(jax.random.fold_in(key, i), 3)
    real, y_real = batch['real'][i], batch['y_real'][i]
    y_fake = batch['y_fake'][i]
    fake, g_vjp, g_stats = jax.vjp(
      functools.partial(apply_g, stats=g_stats, z=batch['z'][i], y=y_fake),
      state.g_params,
      has_aux=True,
    )

    def d_loss_fn(params):
      (real_logits, real_cls), stats = apply_d(
        params, d_stats, real, y_real, k_real
      )
      (fake_logits, fake_cls), stats = apply_d(
        params, stats, fake, y_fake, k_fake
      )
      total = loss.d_loss(real_logits, fake_logits)
      total += class_loss(real_cls, y_real) + class_loss(fake_cls, y_fake)
      # Penalties see D as a per-example function of its input, a pack;
      # its statistics updates from these extra forwards are discarded.
      critic = lambda x: apply_d(  # noqa: E731
        params, stats, models.unpack(x, m), y_real, k_pen
      )[0][0]
      real_in, fake_in = models.pack(real, m), models.pack(fake, m)
      if loss.penalty:
        total += losses.PENALTIES[loss.penalty](
          critic, real_in, fake_in, k_pen, weight
        )
      if config.r1_gamma > 0:
        total += losses.r1_penalty(critic, real_in, config.r1_gamma)
      total = jax.lax.pmean(total, AXIS)
      return total, (stats, real_logits, fake_logits, real_cls, fake_cls)

    (d_loss, aux), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
      d_params
    )
    d_stats, real_logits, fake_logits, real_cls, fake_cls = aux
    updates, d_opt = d_tx.update(d_grads, d_opt, d_params)
    d_params = optax.apply_updates(d_params, updates)
    if config.d_weight_clip > 0:
      c = config.d_weight_clip
      d_params = jax.tree.map(lambda p: jnp.clip(p, -c, c), d_params)

  k_g = jax.random.fold_in(key, batch['z'].shape[0])

  def g_loss_fn(fake_images):
    (logits, cls), stats = apply_d(d_params, d_stats, fake_images, y_fake, k_g)
    real = jax.lax.stop_gradient(real_logits) if loss.g_needs_real else None
    total = loss.g_loss(logits, real) + class_loss(cls, y_fake)
    return jax.lax.pmean(total, AXIS), stats

  (g_loss, d_stats), fake_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
    fake
  )
  (g_grads,) = g_vjp(fake_grads)
  updates, g_opt = g_tx.update(g_grads, state.g_opt, state.g_params)
  g_params = optax.apply_updates(state.g_params, updates)
  g_ema = state.g_ema
  if config.ema_decay > 0:
    g_ema = optax.incremental_update(g_params, g_ema, 1 - config.ema_decay)

  metrics = {
    'd_loss': d_loss,
    'g_loss': g_loss,
    'd_real': jax.lax.pmean(jnp.mean(jax.nn.sigmoid(real_logits)), AXIS),
    'd_fake': jax.lax.pmean(jnp.mean(jax.nn.sigmoid(fake_logits)), AXIS),
    'd_grad_norm': optax.tree.norm(d_grads),
    'g_grad_norm': optax.tree.norm(g_grads),
  }
  if real_cls is not None:  # AC-GAN: top-1 accuracy of D's classifier

    def accuracy(class_logits, y):
      return jax.lax.pmean(jnp.mean(jnp.argmax(class_logits, -1) == y), AXIS)

    metrics['ac_real_accuracy'] = accuracy(real_cls, y_real)
    metrics['ac_fake_accuracy'] = accuracy(fake_cls, y_fake)
  new_state = state.replace(
    step=state.step + 1,
    g_params=g_params,
    g_stats=g_stats,
    d_params=d_params,
    d_stats=d_stats,
    g_opt=g_opt,
    d_opt=d_opt,
    g_ema=g_ema,
  )
  return new_state, metrics


def make_train_fn(mesh, config, g, d, g_tx, d_tx, num_models=1):
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
  step_fn = jax.shard_map(
    functools.partial(
      train_step, g=g, d=d, g_tx=g_tx, d_tx=d_tx, config=config
    ),
    mesh=mesh,
    in_specs=(P(), P(None, AXIS), P()),
    out_specs=(P(), P()),
  )

  def one(state, source):
    key = jax.random.fold_in(state.rng, state.step)
    k_data, k_z, k_step = jax.random.split(key, 3)
    n, b = config.d_steps, config.batch_size
    real, y_real = jax.vmap(lambda k: dataset.sample(source, k, b))(
      jax.random.split(k_data, n)
    )
    z = jax.random.normal(k_z, (n, b, config.model.z_dim))
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
