"""Update schemes: how one iteration moves G and D, one record each.

A leaf of the config checks (no JAX): `validate` reads the rules here
without importing the step. With v(w) = -(grad_G L_G, grad_D L_D) the
game's vector field at w = (G, D) on this step's minibatch and `apply` each
player's optimizer step:
  alternating    Goodfellow et al. 2014, Algorithm 1: `d_steps` D updates on
                 (real, G(z)), then one G update through the updated D.
  simultaneous   w <- apply(w, v(w)): both gradients at the same parameters
                 (the released code of Goodfellow et al. 2014; PacGAN).
  extragradient  w' = apply(w, v(w)), then w <- apply(w, v(w')): the update
                 from w with the look-ahead's gradients (Korpelevich 1976;
                 Gidel et al. 2019), on the same minibatch; the look-ahead's
                 optimizer state is discarded.
  optimistic     simultaneous, each optimizer fed 2 g_t - g_(t-1)
                 (Daskalakis et al. 2018; train_state.optimistic).
  consensus      w <- apply(w, v - gamma J^T v), J = dv/dw: both players
                 also descend gamma/2 ||v||^2 (Mescheder et al. 2017),
                 gamma = config.consensus_gamma.
  unrolled       simultaneous, but G's gradient is that of L_G(G, D_k(G)),
                 D_k = D after k = config.unroll_steps differentiable D
                 steps (optimizer included) on this minibatch; D_1 is D's
                 own update. k = 0 is simultaneous (Metz et al. 2017 and
                 its released notebook, poolio/unrolled_gan).
A researcher's scheme is `SCHEMES.register(name, Scheme(step=my_step))`,
`my_step` built from gan_jax.updates' pieces like train_step's.
"""

import dataclasses
from collections.abc import Callable

from gan_jax import registry


@dataclasses.dataclass(frozen=True)
class Scheme:
  """One update scheme.

  step: `(state, batch, key, *, gan, rules) -> (state, metrics)`, run
    inside shard_map (train_step.alternating_step documents the batch and
    the metrics; rules: the updates.Rules of the config), or its
    'module:function' path.
  optimizer: None, or `() -> optax.GradientTransformation` (or its path)
    chained before each player's optimizer.
  field: `(gan, rules, g, d, batch, key, step) -> (G's, D's gradients)`
    of the scheme's vector field -v at fixed statistics (or its path), what
    gan_jax.dynamics studies.
  d_steps: whether D may take config.d_steps > 1 updates per iteration
    (each on its own minibatch); other schemes take both from one.
  g_sees_updated_d: config -> whether G's gradient is taken through
    another D than the pass D learns from (then config.shared_fake_pass,
    which reuses that pass, cannot apply).
  """

  step: Callable | str
  optimizer: Callable | str | None = None
  field: Callable | str = 'gan_jax.updates:game_field'
  d_steps: bool = False
  g_sees_updated_d: Callable = lambda config: False


SCHEMES = registry.Registry('update_scheme')
SCHEMES.register(
  'alternating',
  Scheme(
    'gan_jax.train_step:alternating_step',
    d_steps=True,
    g_sees_updated_d=lambda config: True,
  ),
)
SCHEMES.register('simultaneous', Scheme('gan_jax.train_step:simultaneous_step'))
SCHEMES.register(
  'extragradient', Scheme('gan_jax.train_step:extragradient_step')
)
SCHEMES.register(
  'optimistic',
  Scheme(
    'gan_jax.train_step:simultaneous_step',
    optimizer='gan_jax.train_state:optimistic',
  ),
)
SCHEMES.register(
  'consensus',
  Scheme(
    'gan_jax.train_step:consensus_step',
    field='gan_jax.updates:consensus_field',
  ),
)
SCHEMES.register(
  'unrolled',
  Scheme(
    'gan_jax.train_step:unrolled_step',
    g_sees_updated_d=lambda config: config.unroll_steps > 0,
  ),
)
