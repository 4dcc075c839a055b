"""The named pieces of a GAN step: forwards, the D update, the G update, metrics.

Each is a pure function of explicit inputs, called inside shard_map over the
`data` axis (losses are `lax.pmean`'d over it); an update scheme
(gan_jax/schemes.py, gan_jax/train_step.py) is a composition of them.

Objectives: D minimises loss.d_loss + penalty + R1 + R2, G minimises
loss.g_loss, with penalty = w * PENALTIES[loss.penalty] (WGAN-GP, DRAGAN),
R1 = gamma/2 E_x ||grad_x D(x)||^2 on real data and R2 the same on G's
samples (Mescheder et al. 2018), all of the critic x -> D(x, y_real). With
instance noise (Sønderby et al. 2017) D sees x + sigma_t eps, eps ~ N(0, I),
in every term of both players' losses. An AC-GAN D (Odena et al. 2017) adds
ac_weight * (CE(c(x), y_real) + CE(c(G(z, y)), y)) to D's loss and
ac_weight * CE(c(G(z, y)), y) to G's, c its class logits. Each loss is the
pmean over `data` of the per-device losses, and BatchNorm statistics are
pmean'd too, so gradients are those of the global-batch objective: JAX
transposes the pmean of the loss into the average of the per-device
gradients of replicated parameters (an explicit pmean of the gradients
would count them twice under shard_map's replication checking).
With config.compute_dtype 'bfloat16', G and D run on bfloat16 copies of
their parameters and inputs and their outputs are cast back to float32, so
losses, gradients, optimizer and statistics stay float32.
With a PacGAN D (models.Packed, m = pack > 1; Lin et al. 2018) logits are
one per pack of m samples; penalties and R1 act on D's input space, the
packs (WGAN-GP interpolates a real and a fake pack with one eps).
"""

import dataclasses
import functools
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax

from gan_jax import augment, losses, models
from gan_jax.models import conditional
from gan_jax.train_state import GAN

AXIS = 'data'  # the mesh axis of data parallelism


@dataclasses.dataclass(frozen=True)
class Noise:
  """Instance noise: sigma_0 = std, decreased linearly to 0 over
  anneal_steps updates when that is > 0."""

  std: float
  anneal_steps: int


@dataclasses.dataclass(frozen=True)
class Rules:
  """What a step reads of the config, resolved once by `Rules.of`.

  loss: the objective (losses.Loss); penalty_weight: its penalty's weight
  (config.penalty_weight, else the loss's own); r1_gamma, r2_gamma;
  ac_weight; noise: instance noise; compute_dtype; g_slots: how many PacGAN
  pack slots G's BatchNorm normalises apart (1: the whole batch);
  d_weight_clip (0: none); shared_fake_pass; consensus_gamma; unroll_steps;
  ema_decay (0: no EMA) and ema_start. Data-efficient training: policy,
  the transform of the images D sees (augment.Policy, None: off) and
  reals_only; ada_target, ada_step (0: p fixed) and ada_interval; lecam_*
  (weight 0: off); cr_real, cr_fake and cr, the consistency transform.
  """

  loss: losses.Loss
  penalty_weight: float
  r1_gamma: float
  r2_gamma: float
  ac_weight: float
  noise: Noise
  compute_dtype: str
  g_slots: int
  d_weight_clip: float
  shared_fake_pass: bool
  consensus_gamma: float
  unroll_steps: int
  ema_decay: float
  ema_start: int
  policy: augment.Policy | None = None
  reals_only: bool = False
  ada_target: float = 0.0
  ada_step: float = 0.0
  ada_interval: int = 1
  lecam_weight: float = 0.0
  lecam_decay: float = 0.0
  lecam_start: int = 0
  cr_real: float = 0.0
  cr_fake: float = 0.0
  cr: augment.Policy | None = None

  @classmethod
  def of(cls, config) -> 'Rules':
    loss = losses.get(config.loss)
    weight = config.penalty_weight
    model = config.model
    aug, lecam, cons = config.augment, config.lecam, config.consistency
    adjusting = aug.method == 'ada' and aug.ada_target > 0
    return cls(
      loss=loss,
      penalty_weight=loss.penalty_weight if weight is None else weight,
      r1_gamma=config.r1_gamma,
      r2_gamma=config.r2_gamma,
      ac_weight=config.ac_weight,
      noise=Noise(
        config.instance_noise.std, config.instance_noise.anneal_steps
      ),
      compute_dtype=config.compute_dtype,
      g_slots=model.pack if model.g_bn_per_slot else 1,
      d_weight_clip=config.d_weight_clip,
      shared_fake_pass=config.shared_fake_pass,
      consensus_gamma=config.consensus_gamma,
      unroll_steps=config.unroll_steps,
      ema_decay=config.ema_decay,
      ema_start=config.ema_start,
      policy=augment.transform_of(aug),
      reals_only=aug.reals_only,
      ada_target=aug.ada_target,
      ada_step=augment.ada_step(
        config.batch_size, aug.ada_interval, aug.ada_kimg
      )
      if adjusting
      else 0.0,
      ada_interval=aug.ada_interval,
      lecam_weight=lecam.weight,
      lecam_decay=lecam.decay,
      lecam_start=lecam.start,
      cr_real=cons.real,
      cr_fake=cons.fake,
      cr=augment.consistency_of(cons),
    )


@flax.struct.dataclass
class Player:
  """One network's slice of the TrainState: parameters, statistics,
  optimizer; D's also its regularisers' memory (TrainState.adaptive)."""

  params: Any
  stats: Any
  opt: Any
  adaptive: Any = None


@flax.struct.dataclass
class DOut:
  """What a D update saw: its loss, gradients and outputs (before the update).

  logits (B/m,) per pack; class logits (B, K) with an AC-GAN head, else None;
  adaptive: D's regularisers' memory after this update (`adapt`).
  """

  loss: jax.Array
  grads: Any
  real_logits: jax.Array
  fake_logits: jax.Array
  real_cls: Any
  fake_cls: Any
  adaptive: Any = None


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


def _apply_train(module, dtype, params, stats, x, y, **kwargs):
  """module in training mode on (x, labels y) in `dtype`; returns (its
  float32 output, its new statistics)."""
  low, full = _casts(dtype)
  out, new = module.apply(
    {'params': low(params), 'batch_stats': stats},
    low(x),
    y,
    train=True,
    mutable=['batch_stats'],
    **kwargs,
  )
  return full(out), new.get('batch_stats', stats)


def apply_d(gan: GAN, rules: Rules, params, stats, x, y, rng):
  """D in training mode on x (B, *shape) with labels y (B,).

  Returns ((logits (B/m,), class logits (B, K) or None), new statistics).
  """
  out, stats = _apply_train(
    gan.d, rules.compute_dtype, params, stats, x, y, rngs={'dropout': rng}
  )
  return conditional.split(out), stats


def apply_g(gan: GAN, rules: Rules, params, stats, z, y):
  """G in training mode: z (B, z_dim), y (B,) -> (G(z, y), new statistics).

  With k = rules.g_slots > 1 (config.model.g_bn_per_slot with a PacGAN D of
  pack k), G runs on the k pack slots of the batch separately (example i in
  slot i mod k, as models.pack), each normalised by its own BatchNorm
  statistics; the new statistics are the slots' mean (running <- mom
  running + (1 - mom) mean_j batch_j), as PacGAN's released code calls G
  once per slot.
  """
  k, dtype = rules.g_slots, rules.compute_dtype
  if k == 1:
    return _apply_train(gan.g, dtype, params, stats, z, y)

  def groups(a):  # (B, ...) -> (k, B/k, ...), group j = rows j, j+k, ...
    return a.reshape(a.shape[0] // k, k, *a.shape[1:]).swapaxes(0, 1)

  out, new = jax.vmap(
    lambda z, y: _apply_train(gan.g, dtype, params, stats, z, y)
  )(*jax.tree.map(groups, (z, y)))  # a None y stays None
  out = out.swapaxes(0, 1).reshape(z.shape[0], *out.shape[2:])
  return out, jax.tree.map(lambda s: s.mean(0), new)


def generate(gan: GAN, rules: Rules, params, stats, z, y):
  """(fake, vjp, new stats): G's forward and its VJP with respect to params,
  so a G update can reuse this forward (same parameters, same gradient)."""
  fake, vjp, stats = jax.vjp(
    functools.partial(apply_g, gan, rules, stats=stats, z=z, y=y),
    params,
    has_aux=True,
  )
  return fake, vjp, stats


def class_loss(weight, class_logits, y):
  """weight * mean CE (0 without an AC-GAN classifier head)."""
  if class_logits is None:
    return 0.0
  ce = optax.softmax_cross_entropy_with_integer_labels(class_logits, y)
  return weight * jnp.mean(ce)


def noise_std(noise: Noise, step):
  """Instance noise's sigma_t after `step` updates."""
  if noise.anneal_steps <= 0:
    return noise.std
  return noise.std * jnp.maximum(0.0, 1.0 - step / noise.anneal_steps)


def add_noise(noise: Noise, x, key, step):
  """x + sigma_t eps, eps ~ N(0, I) from `key`: the input D sees. x itself
  (no draw) when noise.std is 0."""
  if noise.std <= 0:
    return x
  eps = jax.random.normal(key, x.shape, x.dtype)
  return x + noise_std(noise, step) * eps


def _d_keys(key):
  """D's loss keys from its step's key: ((dropout, instance noise) of the
  real pass, the same of the fake pass, the penalties' key)."""
  k_real, k_fake, k_pen = jax.random.split(key, 3)
  k_noise_real, k_noise_fake = jax.random.split(jax.random.fold_in(key, 3))
  return (k_real, k_noise_real), (k_fake, k_noise_fake), k_pen


def transform(rules: Rules, x, aug, view: int, p, fake=False):
  """x as D sees it: rules.augment's T with the `view` keys of the
  per-example keys `aug` (B, 2) and ADA's p; x itself without
  augmentation, and for a `fake` pass with rules.reals_only."""
  if rules.policy is None or aug is None or (fake and rules.reals_only):
    return x
  return rules.policy(x, augment.view_keys(aug, view), p)


def ada_p(adaptive):
  """ADA's p of a D's adaptive memory (1.0 when it has none: DiffAugment)."""
  if adaptive is None or adaptive.p is None:
    return 1.0
  return adaptive.p


def _mean(x):
  return jax.lax.pmean(jnp.mean(x), AXIS)


def adapt(rules: Rules, adaptive, real_logits, fake_logits, step):
  """D's regularisers' memory after a D update that saw these logits (no
  gradient flows through it). LeCam: anchors <- decay a + (1 - decay)
  (mean real logit, mean fake logit), decay 0 before lecam_start. ADA:
  r_t's sum and count grow by this update's E[sign D(x)]; after
  ada_interval updates p <- augment.ada_adjust(p, their mean) and both
  restart."""
  if adaptive is None:
    return None
  real_logits, fake_logits = jax.lax.stop_gradient((real_logits, fake_logits))
  if adaptive.anchors is not None:
    means = jnp.stack([_mean(real_logits), _mean(fake_logits)])
    decay = jnp.where(step >= rules.lecam_start, rules.lecam_decay, 0.0)
    adaptive = adaptive.replace(
      anchors=decay * adaptive.anchors + (1 - decay) * means
    )
  if adaptive.p is not None and rules.ada_step > 0:
    signs = adaptive.signs + _mean(jnp.sign(real_logits))
    count = adaptive.count + 1
    due = count >= rules.ada_interval
    p = augment.ada_adjust(
      adaptive.p, signs / count, rules.ada_target, rules.ada_step
    )
    adaptive = adaptive.replace(
      p=jnp.where(due, p, adaptive.p),
      signs=jnp.where(due, 0.0, signs),
      count=jnp.where(due, 0, count),
    )
  return adaptive


def lecam_loss(real_logits, fake_logits, anchors):
  """E relu(D(x) - a_F)^2 + E relu(a_R - D(G(z)))^2, anchors (a_R, a_F)
  (google/lecam-gan's lecam_reg; the paper's eq. 3 without the relu)."""
  a_real, a_fake = anchors[0], anchors[1]
  return jnp.mean(jax.nn.relu(real_logits - a_fake) ** 2) + jnp.mean(
    jax.nn.relu(a_real - fake_logits) ** 2
  )


def d_loss(
  gan: GAN,
  rules: Rules,
  params,
  stats,
  real,
  y_real,
  fake,
  y_fake,
  key,
  step,
  adaptive=None,
  aug=None,
):
  """D's global-batch loss with its penalties; returns (loss, (stats, DOut
  fields)). key: this D step's key, split into the real, fake and penalty
  keys (and fold_in(key, 3) for instance noise); step: updates done (the
  noise schedule). adaptive: D's regularisers' memory (ADA's p, LeCam's
  anchors); aug: the minibatch's per-example keys (B, 2) when augmenting.
  D sees T(x + sigma eps); the penalties take the critic x -> D(T(x)) with
  the real pass's draws (R2 the fake pass's), as DiffAugment's code takes
  R1 through the augmentation; consistency terms compare D's real (fake)
  logits with D's on T_cr of what that pass saw. Penalties' and
  consistency terms' extra forwards do not update the statistics."""
  loss = rules.loss
  (k_real, k_noise_real), (k_fake, k_noise_fake), k_pen = _d_keys(key)
  p = ada_p(adaptive)
  see_real = lambda x: transform(rules, x, aug, augment.REAL, p)  # noqa: E731
  see_fake = lambda x: transform(  # noqa: E731
    rules, x, aug, augment.FAKE, p, fake=True
  )
  real = add_noise(rules.noise, real, k_noise_real, step)
  fake = add_noise(rules.noise, fake, k_noise_fake, step)
  (real_logits, real_cls), stats = apply_d(
    gan, rules, params, stats, see_real(real), y_real, k_real
  )
  (fake_logits, fake_cls), stats = apply_d(
    gan, rules, params, stats, see_fake(fake), y_fake, k_fake
  )
  total = loss.d_loss(real_logits, fake_logits)
  total += class_loss(rules.ac_weight, real_cls, y_real)
  total += class_loss(rules.ac_weight, fake_cls, y_fake)
  m = models.pack_size(gan.d)

  def critic(see):
    return lambda x: apply_d(
      gan, rules, params, stats, see(models.unpack(x, m)), y_real, k_pen
    )[0][0]

  real_in, fake_in = models.pack(real, m), models.pack(fake, m)
  if loss.penalty:
    total += losses.PENALTIES[loss.penalty](
      critic(see_real), real_in, fake_in, k_pen, rules.penalty_weight
    )
  if rules.r1_gamma > 0:
    total += losses.r1_penalty(critic(see_real), real_in, rules.r1_gamma)
  if rules.r2_gamma > 0:
    total += losses.r2_penalty(critic(see_fake), fake_in, rules.r2_gamma)
  for weight, seen, logits, view, y, k in (
    (
      rules.cr_real,
      see_real(real),
      real_logits,
      augment.CR_REAL,
      y_real,
      k_real,
    ),
    (
      rules.cr_fake,
      see_fake(fake),
      fake_logits,
      augment.CR_FAKE,
      y_fake,
      k_fake,
    ),
  ):
    if weight > 0:
      other = rules.cr(seen, augment.view_keys(aug, view))
      (cr_logits, _), _ = apply_d(gan, rules, params, stats, other, y, k)
      total += weight * consistency_loss(logits, cr_logits)
  adaptive = adapt(rules, adaptive, real_logits, fake_logits, step)
  if rules.lecam_weight > 0:
    on = step >= rules.lecam_start
    reg = lecam_loss(real_logits, fake_logits, adaptive.anchors)
    total += jnp.where(on, rules.lecam_weight * reg, 0.0)
  total = jax.lax.pmean(total, AXIS)
  return total, (stats, real_logits, fake_logits, real_cls, fake_cls, adaptive)


def consistency_loss(logits, transformed_logits):
  """E (D(x) - D(T(x)))^2 over the batch (Zhang et al. 2020)."""
  return jnp.mean((logits - transformed_logits) ** 2)


def d_gradients(
  gan: GAN,
  rules: Rules,
  d: Player,
  real,
  y_real,
  fake,
  y_fake,
  key,
  step,
  aug=None,
):
  """D's loss and gradients at d.params: (new statistics, DOut). aug: the
  minibatch's per-example augmentation keys (B, 2), or None."""
  (total, aux), grads = jax.value_and_grad(
    functools.partial(d_loss, gan, rules), has_aux=True
  )(d.params, d.stats, real, y_real, fake, y_fake, key, step, d.adaptive, aug)
  stats, *outputs = aux
  return stats, DOut(total, grads, *outputs)


def d_apply(
  gan: GAN, rules: Rules, d: Player, grads, stats, adaptive=None
) -> Player:
  """D's optimizer step on `grads`, keeping `stats` and `adaptive` (a DOut's:
  the memory after the pass the gradients come from); D's weights are then
  clipped to [-c, c] when rules.d_weight_clip = c > 0 (Arjovsky et al.
  2017)."""
  updates, opt = gan.d_tx.update(grads, d.opt, d.params)
  params = optax.apply_updates(d.params, updates)
  if rules.d_weight_clip > 0:
    c = rules.d_weight_clip
    params = jax.tree.map(lambda p: jnp.clip(p, -c, c), params)
  return Player(params, stats, opt, adaptive)


def d_update(
  gan: GAN,
  rules: Rules,
  d: Player,
  real,
  y_real,
  fake,
  y_fake,
  key,
  step,
  aug=None,
):
  """One optimizer step of D on (real, fake): (new Player, DOut)."""
  stats, out = d_gradients(
    gan, rules, d, real, y_real, fake, y_fake, key, step, aug
  )
  return d_apply(gan, rules, d, out.grads, stats, out.adaptive), out


def g_loss(
  gan: GAN,
  rules: Rules,
  fake,
  y_fake,
  d: Player,
  real_logits,
  key,
  step,
  noise_key=None,
  aug=None,
  view=augment.G_PASS,
):
  """G's global-batch loss as a function of its samples `fake` (B, *shape),
  scored by D in training mode (dropout from `key`, instance noise from
  noise_key, by default fold_in(key, 3); the augmentation of the `view`
  keys of `aug`, D's fake pass's with shared_fake_pass); returns (loss, D's
  new statistics)."""
  loss = rules.loss
  if noise_key is None:
    noise_key = jax.random.fold_in(key, 3)
  noisy = add_noise(rules.noise, fake, noise_key, step)
  seen = transform(rules, noisy, aug, view, ada_p(d.adaptive), fake=True)
  (logits, cls), stats = apply_d(
    gan, rules, d.params, d.stats, seen, y_fake, key
  )
  real = jax.lax.stop_gradient(real_logits) if loss.g_needs_real else None
  total = loss.g_loss(logits, real) + class_loss(rules.ac_weight, cls, y_fake)
  return jax.lax.pmean(total, AXIS), stats


def g_gradients(
  gan: GAN,
  rules: Rules,
  fake,
  g_vjp,
  y_fake,
  d: Player,
  real_logits,
  key,
  step,
  noise_key=None,
  aug=None,
  view=augment.G_PASS,
):
  """G's loss through D = `d` and its gradient with respect to G's
  parameters, from G's forward (fake, g_vjp) by `generate`: (loss,
  gradients, D's new statistics). key, noise_key, aug, view: as g_loss's."""
  (total, d_stats), fake_grads = jax.value_and_grad(
    functools.partial(g_loss, gan, rules), has_aux=True
  )(fake, y_fake, d, real_logits, key, step, noise_key, aug, view)
  (grads,) = g_vjp(fake_grads)
  return total, grads, d_stats


def g_apply(gan: GAN, g: Player, grads) -> Player:
  """G's optimizer step on `grads`."""
  updates, opt = gan.g_tx.update(grads, g.opt, g.params)
  return Player(optax.apply_updates(g.params, updates), g.stats, opt)


def g_update(
  gan: GAN,
  rules: Rules,
  g: Player,
  fake,
  g_vjp,
  y_fake,
  d: Player,
  real_logits,
  key,
  step,
  aug=None,
):
  """One optimizer step of G through D = `d`, from G's forward (fake, g_vjp)
  by `generate` at g.params; aug: as g_loss's. Returns (new G Player, D's
  new statistics, loss, gradients)."""
  total, grads, d_stats = g_gradients(
    gan, rules, fake, g_vjp, y_fake, d, real_logits, key, step, aug=aug
  )
  return g_apply(gan, g, grads), d_stats, total, grads


@flax.struct.dataclass
class Field:
  """Both players' gradients at the same parameters from one minibatch (the
  game's vector field is minus them), with what computing them saw."""

  g_grads: Any
  g_loss: jax.Array
  g_stats: Any  # G's statistics after its forward
  d: DOut
  d_stats: Any  # D's statistics after its loss's forwards


def game_gradients(
  gan: GAN, rules: Rules, g: Player, d: Player, batch, key, step
) -> Field:
  """(grad_G L_G, grad_D L_D) at (g.params, d.params) on one minibatch.

  batch: {'real', 'y_real', 'z', 'y_fake'} of one step (B, ...), and 'aug'
  with augmentation. D's terms use fold_in(key, 0), G's fold_in(key, 1); G
  is scored by the same D, and with rules.shared_fake_pass by D's own pass
  on the fakes (its dropout masks, instance noise and augmentation: the
  released code of Goodfellow et al. 2014).
  """
  d_key = jax.random.fold_in(key, 0)
  g_keys = (jax.random.fold_in(key, 1), None)
  view = augment.G_PASS
  if rules.shared_fake_pass:
    g_keys, view = _d_keys(d_key)[1], augment.FAKE
  aug = batch.get('aug')
  fake, g_vjp, g_stats = generate(
    gan, rules, g.params, g.stats, batch['z'], batch['y_fake']
  )
  d_stats, d_out = d_gradients(
    gan,
    rules,
    d,
    batch['real'],
    batch['y_real'],
    fake,
    batch['y_fake'],
    d_key,
    step,
    aug,
  )
  g_total, g_grads, _ = g_gradients(
    gan,
    rules,
    fake,
    g_vjp,
    batch['y_fake'],
    d,
    d_out.real_logits,
    g_keys[0],
    step,
    g_keys[1],
    aug,
    view,
  )
  return Field(g_grads, g_total, g_stats, d_out, d_stats)


def consensus_gradients(
  gan: GAN, rules: Rules, g: Player, d: Player, batch, key, step
):
  """grad + gamma J^T grad for both players (Mescheder et al. 2017), with
  grad = (grad_G L_G, grad_D L_D) of `game_gradients`, J its Jacobian in
  (G, D) and gamma = rules.consensus_gamma: the gradient of
  gamma/2 ||grad||^2 is J^T grad, one VJP of the gradient map.
  Returns (G's, D's, the Field at (g, d))."""

  def grads(g_params, d_params):
    field = game_gradients(
      gan,
      rules,
      g.replace(params=g_params),
      d.replace(params=d_params),
      batch,
      key,
      step,
    )
    return (field.g_grads, field.d.grads), field

  v, vjp, field = jax.vjp(grads, g.params, d.params, has_aux=True)
  gamma = rules.consensus_gamma
  g_total, d_total = jax.tree.map(lambda a, b: a + gamma * b, v, vjp(v))
  return g_total, d_total, field


def game_field(gan: GAN, rules: Rules, g: Player, d: Player, batch, key, step):
  """(grad_G L_G, grad_D L_D) of `game_gradients`: minus the vector field
  of every built-in scheme but consensus."""
  field = game_gradients(gan, rules, g, d, batch, key, step)
  return field.g_grads, field.d.grads


def consensus_field(
  gan: GAN, rules: Rules, g: Player, d: Player, batch, key, step
):
  """(G's, D's) gradients of `consensus_gradients`: minus consensus' field."""
  return consensus_gradients(gan, rules, g, d, batch, key, step)[:2]


def metrics(d_out: DOut, g_loss_value, g_grads, y_real, y_fake) -> dict:
  """The logged scalars, averaged over devices: losses, mean D(x) and
  D(G(z)), r_t = E[sign D(x)] (Karras et al. 2020's overfitting heuristic,
  on the real batch as D saw it), gradient norms; with an AC-GAN D the
  top-1 accuracy of its classifier on the real batch and on G's samples
  against their labels; ADA's p and LeCam's anchors when they are on."""
  out = {
    'd_loss': d_out.loss,
    'g_loss': g_loss_value,
    'd_real': _mean(jax.nn.sigmoid(d_out.real_logits)),
    'd_fake': _mean(jax.nn.sigmoid(d_out.fake_logits)),
    'rt': _mean(jnp.sign(d_out.real_logits)),
    'd_grad_norm': optax.tree.norm(d_out.grads),
    'g_grad_norm': optax.tree.norm(g_grads),
  }
  adaptive = d_out.adaptive
  if adaptive is not None and adaptive.p is not None:
    out['ada_p'] = adaptive.p
  if adaptive is not None and adaptive.anchors is not None:
    out['lecam_real'], out['lecam_fake'] = adaptive.anchors
  if d_out.real_cls is not None:

    def accuracy(class_logits, y):
      return jax.lax.pmean(jnp.mean(jnp.argmax(class_logits, -1) == y), AXIS)

    out['ac_real_accuracy'] = accuracy(d_out.real_cls, y_real)
    out['ac_fake_accuracy'] = accuracy(d_out.fake_cls, y_fake)
  return out


def ema(rules: Rules, g_ema, g_params, step):
  """g_ema <- decay * g_ema + (1 - decay) * g_params (decay = ema_decay > 0)
  after update `step` + 1 > ema_start; g_ema <- g_params up to ema_start."""
  if rules.ema_decay <= 0 or g_ema is None:  # a state without an EMA
    return g_ema
  averaged = optax.incremental_update(g_params, g_ema, 1 - rules.ema_decay)
  if not rules.ema_start:
    return averaged
  started = step + 1 > rules.ema_start
  return jax.tree.map(lambda a, p: jnp.where(started, a, p), averaged, g_params)
