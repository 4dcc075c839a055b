"""GAN objectives and gradient regularisers as pure functions of discriminator outputs.

Every objective takes raw discriminator logits (or critic values) of shape (B,) or
(B, 1) and returns a scalar mean over the batch; D = sigmoid(logit) throughout.
Probabilities are never formed: log D = log_sigmoid(l) = -softplus(-l) and
log(1 - D) = log_sigmoid(-l) = -softplus(l), so values and gradients stay finite for
any finite logit. Objectives are registered by name in `LOSSES` (a registry.Registry:
`LOSSES.register(name, Loss(...))` adds one; look up with `get`);
the regularisers take a `critic` callable mapping a batch x of shape (B, ...) to
outputs of shape (B,) or (B, 1), and `PENALTIES` gives the ones an objective includes
by definition a common signature `(critic, real, fake, key, weight) -> scalar`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import registry

Array = jax.Array
Critic = Callable[[Array], Array]

# Added under the square root of ||g||^2 so that d||g||/dg = g / ||g|| is finite
# (zero) when the input gradient g is exactly 0; negligible for ||g||^2 >~ 1e-6.
_NORM_EPS = 1e-12


@dataclasses.dataclass(frozen=True)
class Loss:
  """A GAN objective: discriminator and generator losses plus its built-in regulariser.

  `penalty` names an entry of `PENALTIES` (or None) and `penalty_weight` is the
  paper's default lambda for it. `configure(config)`, if given, sets the
  training options the objective's paper pairs it with when the loss is
  chosen (`apply_defaults`); the command line and a sweep's own fields win.
  `g_needs_real`: g_loss(fake_logits, real_logits) uses the real logits.
  """

  d_loss: Callable[[Array, Array], Array]
  g_loss: Callable[..., Array]
  g_needs_real: bool = False
  penalty: str | None = None
  penalty_weight: float = 0.0
  configure: Callable[..., None] | None = None


# --- objectives --------------------------------------------------------------


def standard_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """-E[log D(x)] - E[log(1 - D(G(z)))] (Goodfellow et al. 2014, Eq. 1)."""
  return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(
    jax.nn.softplus(fake_logits)
  )


def minimax_g_loss(
  fake_logits: Array, real_logits: Array | None = None
) -> Array:
  """E[log(1 - D(G(z)))], minimised by G (Goodfellow et al. 2014, Eq. 1; saturates)."""
  return jnp.mean(jax.nn.log_sigmoid(-fake_logits))


def non_saturating_g_loss(
  fake_logits: Array, real_logits: Array | None = None
) -> Array:
  """-E[log D(G(z))] (Goodfellow et al. 2014, Sec. 3)."""
  return jnp.mean(jax.nn.softplus(-fake_logits))


def least_squares_d_loss(
  real_logits: Array, fake_logits: Array, a: float = 0.0, b: float = 1.0
) -> Array:
  """1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2] on raw outputs (Mao et al. 2017, LSGAN).

  a is the target for fake data, b for real data. The default is the 0-1 coding
  a=0, b=1 (with c=1 in the generator loss); the paper also proposes a=-1, b=1, c=0.
  """
  return 0.5 * jnp.mean((real_logits - b) ** 2) + 0.5 * jnp.mean(
    (fake_logits - a) ** 2
  )


def least_squares_g_loss(
  fake_logits: Array, real_logits: Array | None = None, c: float = 1.0
) -> Array:
  """1/2 E[(D(G(z)) - c)^2] on raw outputs (Mao et al. 2017, LSGAN; default c=1)."""
  return 0.5 * jnp.mean((fake_logits - c) ** 2)


def wasserstein_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """E[D(G(z))] - E[D(x)] on critic values (Arjovsky et al. 2017, WGAN)."""
  return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wasserstein_g_loss(
  fake_logits: Array, real_logits: Array | None = None
) -> Array:
  """-E[D(G(z))] on critic values (Arjovsky et al. 2017); also the hinge G loss."""
  return -jnp.mean(fake_logits)


def hinge_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye 2017; Miyato et al. 2018)."""
  return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(
    jax.nn.relu(1.0 + fake_logits)
  )


def _relativistic(
  real_logits: Array, fake_logits: Array
) -> tuple[Array, Array]:
  """Dr = C(x) - E[C(G(z))] and Df = C(G(z)) - E[C(x)]."""
  return real_logits - jnp.mean(fake_logits), fake_logits - jnp.mean(
    real_logits
  )


def relativistic_average_d_loss(
  real_logits: Array, fake_logits: Array
) -> Array:
  """-E[log sigmoid(Dr)] - E[log(1 - sigmoid(Df))] (Jolicoeur-Martineau 2018, RaSGAN).

  Dr = C(x) - E[C(G(z))], Df = C(G(z)) - E[C(x)], with C the logit.
  """
  dr, df = _relativistic(real_logits, fake_logits)
  return jnp.mean(jax.nn.softplus(-dr)) + jnp.mean(jax.nn.softplus(df))


def relativistic_average_g_loss(
  fake_logits: Array, real_logits: Array | None = None
) -> Array:
  """-E[log sigmoid(Df)] - E[log(1 - sigmoid(Dr))] (Jolicoeur-Martineau 2018, RaSGAN)."""
  if real_logits is None:
    raise ValueError('relativistic_average g_loss needs real_logits (got None)')
  dr, df = _relativistic(real_logits, fake_logits)
  return jnp.mean(jax.nn.softplus(-df)) + jnp.mean(jax.nn.softplus(dr))


def _weight_clip(config) -> None:
  """The original WGAN clips D's weights to [-0.01, 0.01] (Arjovsky et al. 2017)."""
  config.d_weight_clip = 0.01


def _per_example_critic(config) -> None:
  """Gradient penalties need a per-example critic: BatchNorm in D becomes
  layer norm (Gulrajani et al. 2017); validate refuses a BatchNorm D set
  after the loss."""
  if config.model.d.get('norm') == 'batch':
    config.model.d.norm = 'layer'


LOSSES = registry.Registry('loss')
LOSSES.register('minimax', Loss(standard_d_loss, minimax_g_loss))
LOSSES.register('non_saturating', Loss(standard_d_loss, non_saturating_g_loss))
LOSSES.register(
  'least_squares', Loss(least_squares_d_loss, least_squares_g_loss)
)
LOSSES.register(
  'wasserstein',
  Loss(wasserstein_d_loss, wasserstein_g_loss, configure=_weight_clip),
)
LOSSES.register(
  'wasserstein_gp',
  Loss(
    wasserstein_d_loss,
    wasserstein_g_loss,
    penalty='gradient_penalty',
    penalty_weight=10.0,
    configure=_per_example_critic,
  ),
)
LOSSES.register('hinge', Loss(hinge_d_loss, wasserstein_g_loss))
LOSSES.register(
  'dragan',
  Loss(
    standard_d_loss,
    non_saturating_g_loss,
    penalty='dragan',
    penalty_weight=10.0,
    configure=_per_example_critic,
  ),
)
LOSSES.register(
  'relativistic_average',
  Loss(
    relativistic_average_d_loss, relativistic_average_g_loss, g_needs_real=True
  ),
)


def get(name: str) -> Loss:
  """The registered objective `name`; ConfigError listing the valid names otherwise."""
  return LOSSES[name]


def apply_defaults(config) -> None:
  """Sets in `config` the options `config.loss`'s paper pairs it with
  (`Loss.configure`). An unknown loss is left for validate() to report
  with the valid names."""
  if config.loss in LOSSES and LOSSES[config.loss].configure:
    LOSSES[config.loss].configure(config)


def generator_loss_curves(name: str, d_fake):
  """(G loss, d G loss / d logit) of one example at each D(G(z)) in d_fake.

  d_fake: float (N,) in (0, 1). The logit is log(D / (1 - D)); losses of raw
  critic values (wasserstein, hinge, least_squares) take it as that value. A
  loss that needs real logits (relativistic_average) gets a real logit of 0,
  D(x) = 1/2. Minimax's gradient is -D(G(z)), vanishing as D(G(z)) -> 0;
  non-saturating's is D(G(z)) - 1. Returns two float64 numpy arrays (N,).
  """
  loss = get(name)
  real = jnp.zeros((1,))

  def per_example(logit):
    return loss.g_loss(jnp.reshape(logit, (1,)), real)

  d_fake = jnp.asarray(d_fake)
  logits = jnp.log(d_fake) - jnp.log1p(-d_fake)
  values = jax.vmap(per_example)(logits)
  grads = jax.vmap(jax.grad(per_example))(logits)
  return np.asarray(values, np.float64), np.asarray(grads, np.float64)


# --- regularisers ------------------------------------------------------------


def _input_grad_sq_norms(critic: Critic, x: Array) -> Array:
  """||grad_x D(x_i)||^2 per example, shape (B,).

  Uses grad of sum_i D(x_i), whose x_i-block is grad D(x_i) because examples do
  not interact (true for critics without batch statistics, e.g. no batch norm).
  """
  g = jax.grad(lambda x: jnp.sum(critic(x)))(x)
  return jnp.sum(g**2, axis=tuple(range(1, g.ndim)))


def _unit_norm_penalty(critic: Critic, x_hat: Array) -> Array:
  """E[(||grad D(x_hat)||_2 - 1)^2] with ||g|| = sqrt(sum g^2 + 1e-12) (finite grad at g=0)."""
  norms = jnp.sqrt(_input_grad_sq_norms(critic, x_hat) + _NORM_EPS)
  return jnp.mean((norms - 1.0) ** 2)


def gradient_penalty(
  critic: Critic, real: Array, fake: Array, key: Array, weight: float = 10.0
) -> Array:
  """weight * E[(||grad D(x_hat)||_2 - 1)^2] (Gulrajani et al. 2017, WGAN-GP, Eq. 3).

  x_hat = eps * real + (1 - eps) * fake with eps ~ U[0, 1] drawn once per example.
  """
  eps = jax.random.uniform(
    key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype
  )
  return weight * _unit_norm_penalty(critic, eps * real + (1.0 - eps) * fake)


def r1_penalty(critic: Critic, real: Array, gamma: float = 10.0) -> Array:
  """gamma/2 * E[||grad_x D(x)||_2^2] on real data (Mescheder et al. 2018, R1)."""
  return 0.5 * gamma * jnp.mean(_input_grad_sq_norms(critic, real))


def r2_penalty(critic: Critic, fake: Array, gamma: float = 10.0) -> Array:
  """gamma/2 * E[||grad_x D(G(z))||_2^2] on G's samples (Mescheder et al.
  2018, R2): R1's zero-centred penalty at the generated points."""
  return r1_penalty(critic, fake, gamma)


def dragan_penalty(
  critic: Critic,
  real: Array,
  key: Array,
  weight: float = 10.0,
  c: float = 0.5,
) -> Array:
  """weight * E[(||grad D(x_hat)||_2 - 1)^2] near real data (Kodali et al. 2017, DRAGAN).

  x_hat = x + c * std(x) * u, where std(x) is the standard deviation of the whole real
  batch over all elements (a scalar, under stop_gradient) and u ~ U[0, 1] is drawn
  independently per element (same shape as x).
  """
  std = jax.lax.stop_gradient(jnp.std(real))
  u = jax.random.uniform(key, real.shape, real.dtype)
  return weight * _unit_norm_penalty(critic, real + c * std * u)


PENALTIES: dict[str, Callable[[Critic, Array, Array, Array, float], Array]] = {
  'gradient_penalty': gradient_penalty,
  'dragan': lambda critic, real, fake, key, weight: dragan_penalty(
    critic, real, key, weight
  ),
}
