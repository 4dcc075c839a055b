"""What a GAN is and what training carries: the GAN bundle and the TrainState.

`GAN` holds the four objects that describe a GAN (generator, discriminator
and their optimizers); `TrainState` is everything a step reads and writes,
one pytree, checkpointed whole (its field names are the checkpoint format).
"""

import dataclasses
import math
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import optax

from gan_jax import models, registry, sampling, schemes
from gan_jax.models import mlp, norms


@dataclasses.dataclass(frozen=True)
class GAN:
  """Generator and discriminator modules (Flax Linen) and their optimizers."""

  g: Any
  d: Any
  g_tx: optax.GradientTransformation
  d_tx: optax.GradientTransformation


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
  adaptive: Any = None  # D's regularisers' memory (Adaptive), else None


@flax.struct.dataclass
class Adaptive:
  """What D's adaptive regularisers carry between updates (a field is None
  when its method is off): ADA's probability p, the sum of the r_t of the
  D updates since its last adjustment and their count; LeCam's anchors
  (a_R, a_F) float32 (2,)."""

  p: Any = None
  signs: Any = None
  count: Any = None
  anchors: Any = None


def initial_adaptive(config) -> Adaptive | None:
  """The Adaptive of a fresh run of `config`, None when neither ADA nor
  LeCam is on."""
  ada = config.augment.method == 'ada'
  lecam = config.lecam.weight > 0
  if not (ada or lecam):
    return None
  zero = lambda: jnp.zeros((), jnp.float32)  # noqa: E731
  return Adaptive(
    p=jnp.full((), config.augment.ada_p, jnp.float32) if ada else None,
    signs=zero() if ada else None,
    count=jnp.zeros((), jnp.int32) if ada else None,
    anchors=jnp.zeros((2,), jnp.float32) if lecam else None,
  )


OPTIM_FIELDS = (('lr', 'learning_rate'), ('b1', 'b1'), ('b2', 'b2'))


def adam_hparams(optim, net) -> dict:
  """optax.adam's arguments for `net` ('g' or 'd'): its own or the shared."""
  return {
    name: optim[k] if optim[f'{net}_{k}'] is None else optim[f'{net}_{k}']
    for k, name in OPTIM_FIELDS
  }


OPTIMIZERS = ('adam', 'sgd')


def sgd_schedules(optim, net):
  """(learning rate, momentum) of SGD for `net` as optax schedules of the
  update count t: lr_t = max(lr / lr_decay^t, lr_min); momentum constant, or
  linear from `momentum` to `momentum_final` over `momentum_ramp`."""
  lr = _sgd_lr(optim, net)
  log_decay, floor = math.log(optim.lr_decay), optim.lr_min  # float64 log

  def learning_rate(t):
    return jnp.maximum(lr * jnp.exp(-log_decay * t.astype(jnp.float32)), floor)

  if optim.momentum_final is None:
    momentum = optax.constant_schedule(optim.momentum)
  else:
    start, end = optim.momentum_ramp
    momentum = optax.linear_schedule(
      optim.momentum, optim.momentum_final, end - start, start
    )
  return learning_rate, momentum


def _sgd_lr(optim, net) -> float:
  """`net`'s initial SGD learning rate: its own, else optim.lr."""
  return optim.lr if optim[f'{net}_lr'] is None else optim[f'{net}_lr']


def sgd_floor_step(optim, net) -> int | None:
  """The first update t_f whose rate lr / lr_decay^t_f is at or below
  lr_min (sgd_schedules), 0 when lr starts there; None when it never gets
  there (no decay, or lr_min 0)."""
  lr, d, floor = _sgd_lr(optim, net), optim.lr_decay, optim.lr_min
  if lr <= floor:
    return 0
  if d <= 1 or floor <= 0:
    return None
  return math.ceil(math.log(lr / floor) / math.log(d))


def sgd_lr_sum(optim, net, t: int) -> float:
  """sum_{s < t} lr_s of sgd_schedules' rate for `net`, in closed form: the
  n = min(t, t_f) updates before the floor (t_f = sgd_floor_step, d =
  lr_decay) give lr (1 - d^-n) / (1 - 1/d) (lr n for d = 1), the t - n
  after it lr_min each. Total step length of SGD without momentum; with
  constant momentum mu, a 1 / (1 - mu) multiple."""
  lr, d, floor = _sgd_lr(optim, net), optim.lr_decay, optim.lr_min
  if d == 1 or lr <= floor:
    return max(lr, floor) * t
  t_f = sgd_floor_step(optim, net)
  n = t if t_f is None else min(t, t_f)
  return lr * -math.expm1(-n * math.log(d)) / -math.expm1(-math.log(d)) + (
    floor * (t - n)
  )


class OptimisticState(NamedTuple):
  """The previous update's gradient and the number of updates so far."""

  previous: Any
  count: jax.Array


def optimistic() -> optax.GradientTransformation:
  """g_t -> 2 g_t - g_(t-1), and g_0 unchanged (Daskalakis et al. 2018); the
  optimizer chained after it steps on the extrapolated gradient."""

  def init(params):
    return OptimisticState(
      jax.tree.map(jnp.zeros_like, params), jnp.zeros((), jnp.int32)
    )

  def update(grads, state, params=None):
    del params
    first = state.count == 0
    out = jax.tree.map(
      lambda g, p: jnp.where(first, g, 2 * g - p), grads, state.previous
    )
    return out, OptimisticState(grads, optax.safe_increment(state.count))

  return optax.GradientTransformation(init, update)


def make_optimizers(optim, scheme='alternating'):
  """(G's, D's) optimizer: Adam or SGD with momentum (`optim.name`), after
  the update scheme's own transformation if it has one (`Scheme.optimizer`:
  `optimistic()` for 'optimistic').

  Adam: `optim.g_lr` etc. override the shared lr/b1/b2, which live in the
  optimizer state (`optax.inject_hyperparams`), so models vmapped in one
  program can each have their own (`set_hyperparameters`). SGD: optax's
  heavy-ball trace t <- g + mu t, update -lr t, with sgd_schedules (for a
  constant lr the same steps as v <- mu v - lr g of pylearn2).
  """
  if optim.name == 'sgd':

    def sgd(net):
      lr, momentum = sgd_schedules(optim, net)
      return optax.inject_hyperparams(optax.sgd)(lr, momentum)

    pair = sgd('g'), sgd('d')
  else:
    adam = optax.inject_hyperparams(optax.adam)
    pair = adam(**adam_hparams(optim, 'g')), adam(**adam_hparams(optim, 'd'))
  wrap = schemes.SCHEMES[scheme].optimizer
  if wrap:
    wrap = registry.resolve(wrap)
    return tuple(optax.chain(wrap(), tx) for tx in pair)
  return pair


def build(config, shape, axis_name=None) -> GAN:
  """The GAN of `config` (config.model, config.optim) for data of `shape`.

  axis_name: the mesh axis BatchNorm and spectral norm average over (None
  outside shard_map: sampling, evaluation).
  """
  g, d = models.build(config.model, shape, axis_name=axis_name)
  return GAN(g, d, *make_optimizers(config.optim, config.update_scheme))


def set_hyperparameters(state: TrainState, optim) -> TrainState:
  """Writes the lr/b1/b2 of config.optim into Adam's states (SGD's are
  schedules, recomputed at every update)."""
  if optim.name != 'adam':
    return state

  def put(opt, net):
    if not hasattr(opt, 'hyperparams'):  # chain(the scheme's, adam)
      return (*opt[:-1], put(opt[-1], net))
    hp = dict(opt.hyperparams)
    for name, value in adam_hparams(optim, net).items():
      hp[name] = jnp.full_like(hp[name], value)
    return opt._replace(hyperparams=hp)

  return state.replace(g_opt=put(state.g_opt, 'g'), d_opt=put(state.d_opt, 'd'))


def init_state(
  gan: GAN, z_dim: int, shape, key, ema=False, output_bias=None, adaptive=None
) -> TrainState:
  """Initial parameters, optimizer states and base key from `key`;
  `adaptive`: initial_adaptive(config).

  D is initialised on one pack (one example unless D is models.Packed).
  output_bias: (prod(shape),) for G's output layer (mlp.with_output_bias),
  or None to keep the initialiser's.
  """
  k_g, k_d, k_rng = jax.random.split(key, 3)
  g_vars, d_vars = models.init_variables(gan.g, gan.d, z_dim, shape, k_g, k_d)
  if output_bias is not None:
    g_vars = {
      **g_vars,
      'params': mlp.with_output_bias(g_vars['params'], output_bias),
    }
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    rng=k_rng,
    g_params=g_vars['params'],
    g_stats=g_vars.get('batch_stats', {}),
    d_params=d_vars['params'],
    d_stats=d_vars.get('batch_stats', {}),
    g_opt=gan.g_tx.init(g_vars['params']),
    d_opt=gan.d_tx.init(d_vars['params']),
    g_ema=jax.tree.map(jnp.array, g_vars['params']) if ema else None,
    adaptive=adaptive,
  )


STANDING_NUM = 1000  # noise draws of the EMA generator's BN statistics
STANDING_SEED = 1729  # their fixed key: every call sees the same draws


def uses_standing_stats(state: TrainState, standing=False) -> bool:
  """Whether generator_variables samples with standing statistics: G has
  BatchNorm, and an EMA or `standing`."""
  has_bn = bool(jax.tree.leaves(state.g_stats))
  return has_bn and (state.g_ema is not None or standing)


def generator_variables(
  g, state: TrainState, z_dim: int, prior='normal', standing=False
):
  """G's variables for sampling: {'params', 'batch_stats'}.

  Without an EMA: the trained weights and their running BatchNorm
  statistics, or with `standing` their standing statistics. With one: the
  EMA weights and their own standing statistics (Brock et al. 2019): the
  batch mean and variance of every BatchNorm of the sampled generator in
  train mode on STANDING_NUM fixed draws of z (balanced labels); the
  running statistics belong to the trained weights. Read from the updated
  running statistics of one step from zero: new = (1 - m) batch.
  """
  params = state.g_params if state.g_ema is None else state.g_ema
  if not uses_standing_stats(state, standing):
    return {'params': params, 'batch_stats': state.g_stats}
  z = sampling.noise(
    jax.random.PRNGKey(STANDING_SEED), (STANDING_NUM, z_dim), prior
  )
  y = jnp.asarray(sampling.class_labels(STANDING_NUM, g.num_classes))
  zeros = jax.tree.map(jnp.zeros_like, state.g_stats)
  _, new = g.clone(axis_name=None).apply(
    {'params': params, 'batch_stats': zeros},
    z,
    y,
    train=True,
    mutable=['batch_stats'],
  )
  return {
    'params': params,
    'batch_stats': jax.tree.map(
      lambda s: s / (1 - norms.BN_MOMENTUM), new['batch_stats']
    ),
  }
