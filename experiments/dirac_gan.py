"""The Dirac-GAN of Mescheder et al. 2018 (Sec. 2-3), trained by the project's own step.

  python -m experiments.dirac_gan docs/results/dirac_gan

Writes trajectories.png (every method under every scheme, the vector field
behind), eigenvalues.png (the Jacobian's eigenvalues at the equilibrium
against the gradient penalty's gamma) and results.json (the distance to the
equilibrium after 500 steps and its verdict per method and scheme, and the
eigenvalues of each method). Seconds on 2 CPU cores, no data.

The game: data a point mass at 0, G(z) = theta for every z, and D linear,
D_psi(x) = psi x. Mescheder et al. write the objective as
L = E f(D(G(z))) + E f(-D(x)), D's output the logit of "fake"; the project's
D outputs the logit of "real", so DiracD returns -psi x, which makes psi the
paper's parameter and every trajectory the paper's. The equilibrium is
(theta, psi) = (0, 0). Nothing of the game is written by hand: the step is
gan_jax.train_step.sharded_step (the objective from gan_jax.losses.LOSSES,
R1 and the gradient penalty of gan_jax.losses, D's weight clipping,
instance noise and the consensus and alternating schemes of
gan_jax.updates), the optimizer make_optimizers' SGD, and the vector field
and its Jacobian gan_jax.dynamics.vector_field.

The settings, read from the paper and its released notebook
(github.com/LMescheder/GAN_stability: notebooks/DiracGAN.ipynb for the
list of methods and the step size; notebooks/diracgan/gans.py for each
method's vector field; notebooks/diracgan/simulate.py for the schemes),
beside ours:
  setting            released notebook                  here
  start, steps       (theta, psi) = (1, 1), 500          the same
  step size          h = 0.2 for both players            SGD lr 0.2, no momentum
  GAN                f(t) = -log(1 + e^-t)              loss=minimax
  non-saturating     G ascends f(-D(G(z))) instead      loss=non_saturating
  WGAN               f(t) = t, psi clipped to [-1, 1]    loss=wasserstein,
                                                         d_weight_clip=1
  WGAN-GP            reg 0.7 on (|psi| - 1)^2, in the   loss=wasserstein_gp,
                     form reg/2 (|grad D| - 1)^2         penalty_weight=0.35
  instance noise     sigma 0.7, 1,000 draws a step      instance_noise.std=0.7,
                                                         batch 1,000
  gradient penalty   gamma 0.3 and gamma 1 (critical,   r1_gamma=0.3, 1
                     2 f'(0))
  consensus          gamma 1                            update_scheme=consensus,
                                                         consensus_gamma=1
  NS-GAN + penalty   gamma 0.3                          loss=non_saturating,
                                                         r1_gamma=0.3
  schemes            simultaneous; alternating with 1   the same (d_steps=1, 5)
                     and 5 D steps per G step
What differs, and why:
  - Alternating order: the notebook moves G first, then D; the project's
    alternating scheme moves D first (Goodfellow et al. 2014, Algorithm 1).
    Local behaviour (eigenvalues of the update operator) is the same.
  - Consensus runs only with simultaneous updates: the project's consensus
    is Mescheder et al. 2017's simultaneous scheme; the notebook also
    alternates it, which no paper defines. Its alternating rows are absent.
  - Instance noise is drawn afresh each step from the step's key (the
    notebook draws 1,000 with numpy), so trajectories agree in law only.
  - ||grad D|| in WGAN-GP is sqrt(psi^2 + 1e-12) (gan_jax.losses: a finite
    gradient at 0), a change below 1e-12 in the field.

The paper's statements this file checks (results.json 'verdict'):
unregularised GAN training does not converge, simultaneous (Lemma 2.3: the
update operator has eigenvalues 1 +- h f'(0) i, of modulus > 1, so it
spirals away near the equilibrium) or alternating (Lemma 2.4: eigenvalues
on the unit circle for h f'(0) sqrt(n_d) <= 2); WGAN and WGAN-GP
with finitely many D steps do not converge; instance noise, zero-centred
gradient penalties and consensus optimisation converge (Sec. 3).
Measured: the distance ||(theta, psi)|| after 500 steps; 'converges' below
0.05, 'diverges' above the start's sqrt(2), otherwise 'does not converge'
(diverging is one way of not converging).
"""

import json
import math
import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import config as config_lib
from gan_jax import dynamics, sweep, train_state, train_step
from gan_jax.report import records

STEPS = 500
LR = 0.2
START = (1.0, 1.0)
BATCH = 1000
CONVERGED = 0.05  # distance to (0, 0) after STEPS that counts as converged

# name: (label, config overrides, what the paper states)
METHODS = {
  'gan': ('GAN', {'loss': 'minimax'}, 'does not converge'),
  'nsgan': (
    'non-saturating GAN',
    {'loss': 'non_saturating'},
    'does not converge',
  ),
  'wgan': (
    'WGAN (clip 1)',
    {'loss': 'wasserstein', 'd_weight_clip': 1.0},
    'does not converge',
  ),
  'wgan_gp': (
    'WGAN-GP',
    {'loss': 'wasserstein_gp', 'penalty_weight': 0.35},
    'does not converge',
  ),
  'instance_noise': (
    'instance noise (0.7)',
    {'loss': 'minimax', 'instance_noise.std': 0.7},
    'converges',
  ),
  'r1': (
    'gradient penalty (0.3)',
    {'loss': 'minimax', 'r1_gamma': 0.3},
    'converges',
  ),
  'r1_critical': (
    'gradient penalty (1, critical)',
    {'loss': 'minimax', 'r1_gamma': 1.0},
    'converges',
  ),
  'consensus': (
    'consensus (1)',
    {'loss': 'minimax', 'update_scheme': 'consensus', 'consensus_gamma': 1.0},
    'converges',
  ),
  'nsgan_r1': (
    'NS-GAN + gradient penalty (0.3)',
    {'loss': 'non_saturating', 'r1_gamma': 0.3},
    'converges',
  ),
}
# The real part of the Jacobian's eigenvalues at the equilibrium in closed
# form (Sec. 2-3; f'(0) = 1/2, f''(0) = -1/4 for the standard objective):
# 0 without regularisation (+- f'(0) i; WGAN +- i), -gamma/2 for a
# zero-centred penalty, -gamma f'(0)^2 for consensus, f''(0) sigma^2 for
# instance noise. WGAN-GP's penalty has a kink at 0: no Jacobian.
F1, F2 = 0.5, -0.25
CLOSED_FORM_REAL = {
  'gan': 0.0,
  'nsgan': 0.0,
  'wgan': 0.0,
  'instance_noise': F2 * 0.7**2,
  'r1': -0.3 / 2,
  'r1_critical': -1.0 / 2,
  'consensus': -1.0 * F1**2,
  'nsgan_r1': -0.3 / 2,
}
# name: (update_scheme, d_steps)
SCHEMES = {
  'simultaneous': ('simultaneous', 1),
  'alternating_1': ('alternating', 1),
  'alternating_5': ('alternating', 5),
}


class DiracG(nn.Module):
  """G(z) = theta for every z: (B, z_dim) -> (B, 1)."""

  @nn.compact
  def __call__(self, z, y=None, train: bool = True):
    del y, train
    theta = self.param('theta', nn.initializers.zeros, (1,))
    return jnp.broadcast_to(theta, (z.shape[0], 1))


class DiracD(nn.Module):
  """The logit of "real" -psi x: (B, 1) -> (B,); psi is the paper's."""

  @nn.compact
  def __call__(self, x, y=None, train: bool = True):
    del y, train
    psi = self.param('psi', nn.initializers.zeros, (1,))
    return -psi[0] * x[:, 0]


def expected(method: str, scheme: str) -> str:
  """What the paper states for `method` under `scheme`."""
  del scheme  # the paper's statements hold for all three schemes
  return METHODS[method][2]


def outcome(distance: float) -> str:
  """The verdict of a final distance to the equilibrium."""
  if distance < CONVERGED:
    return 'converges'
  if distance > math.hypot(*START):
    return 'diverges'
  return 'does not converge'


def agrees(measured: str, stated: str) -> bool:
  """Diverging is one way of not converging."""
  if stated == 'does not converge':
    return measured != 'converges'
  return measured == stated


def get_config(method: str, scheme: str = 'simultaneous'):
  """The project config of `method` under `scheme` (SCHEMES' names)."""
  c = config_lib.base_config()
  c.model.z_dim = 1
  c.batch_size = BATCH
  c.optim.name = 'sgd'
  c.optim.lr = LR
  c.optim.momentum = 0.0
  c.update_scheme, c.d_steps = SCHEMES[scheme]
  return sweep.apply(c, METHODS[method][1], loss_defaults=False)


def build(config):
  """(GAN with the Dirac G and D, TrainState at START)."""
  gan = train_state.GAN(
    DiracG(),
    DiracD(),
    *train_state.make_optimizers(config.optim, config.update_scheme),
  )
  state = train_state.init_state(gan, 1, (1,), jax.random.PRNGKey(0))
  theta, psi = START
  state = state.replace(
    g_params={'theta': jnp.array([theta])},
    d_params={'psi': jnp.array([psi])},
  )
  state = state.replace(
    g_opt=gan.g_tx.init(state.g_params), d_opt=gan.d_tx.init(state.d_params)
  )
  return gan, state


def batch(config) -> dict:
  """The point mass at 0 and (unused) z, for d_steps minibatches."""
  n, b = config.d_steps, config.batch_size
  zeros = jnp.zeros((n, b, 1), jnp.float32)
  labels = jnp.zeros((n, b), jnp.int32)
  return {'real': zeros, 'y_real': labels, 'z': zeros, 'y_fake': labels}


def trajectory(config, steps: int = STEPS, seed: int = 0) -> np.ndarray:
  """(theta, psi) at steps 0..steps of the project's step: (steps + 1, 2)."""
  gan, state = build(config)
  step = jax.jit(
    train_step.sharded_step(dynamics.one_device_mesh(), config, gan)
  )
  x, key = batch(config), jax.random.PRNGKey(seed)
  points = [START]
  for t in range(steps):
    state, _ = step(state, x, jax.random.fold_in(key, t))
    points.append(
      (float(state.g_params['theta'][0]), float(state.d_params['psi'][0]))
    )
  return np.asarray(points)


def field(config, key=None):
  """(v, w0) of gan_jax.dynamics at the equilibrium, w = (theta, psi)."""
  gan, state = build(config)
  state = state.replace(
    g_params={'theta': jnp.zeros(1)}, d_params={'psi': jnp.zeros(1)}
  )
  one = {k: x[0] for k, x in batch(config).items()}
  key = jax.random.PRNGKey(0) if key is None else key
  return dynamics.vector_field(gan, config, state, one, key)


def equilibrium_eigenvalues(config, key=None) -> np.ndarray:
  """Eigenvalues (2,) of dv/dw at (0, 0), sorted by imaginary part."""
  v, w0 = field(config, key)
  vals = np.linalg.eigvals(dynamics.dense(v, w0))
  return vals[np.lexsort((vals.real, vals.imag))]


def _plot(out, runs, gammas, eig):
  import matplotlib

  matplotlib.use('Agg')
  from matplotlib import pyplot as plt

  grid = np.linspace(-2, 2, 10)
  th, ps = np.meshgrid(grid, grid)
  methods = list(METHODS)
  fig, axes = plt.subplots(
    len(SCHEMES), len(methods), figsize=(2.2 * len(methods), 2.4 * 3)
  )
  for j, m in enumerate(methods):
    v, _ = field(get_config(m, 'simultaneous'))
    vf = jax.jit(jax.vmap(lambda w: v(w)))
    arrows = np.asarray(vf(jnp.stack([th.ravel(), ps.ravel()], 1)))
    for i, s in enumerate(SCHEMES):
      ax = axes[i, j]
      ax.quiver(th, ps, arrows[:, 0], arrows[:, 1], color='0.6')
      run = runs.get(f'{m}/{s}')
      if run is not None:
        path = np.asarray(run['trajectory'])
        ax.plot(path[:, 0], path[:, 1], 'b-', lw=0.7)
        ax.plot(*START, 'ro', ms=3)
        ax.set_title(f'{run["measured"]}', fontsize=8)
      else:
        ax.set_title('not defined', fontsize=8)
      ax.set_xlim(-2, 2)
      ax.set_ylim(-2, 2)
      ax.set_xticks([])
      ax.set_yticks([])
      if i == len(SCHEMES) - 1:
        ax.set_xlabel(METHODS[m][0], fontsize=8)
      if j == 0:
        ax.set_ylabel(s.replace('_', ' ') + '\npsi', fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out, 'trajectories.png'), dpi=80)
  plt.close(fig)

  fig, ax = plt.subplots(figsize=(5, 4))
  f0 = 0.5
  fine = np.linspace(0, gammas[-1], 200)
  root = np.sqrt((fine**2 / 4 - f0**2).astype(complex))
  for sign, label in ((1, 'closed form'), (-1, None)):
    lam = -fine / 2 + sign * root
    ax.plot(lam.real, lam.imag, 'k-', lw=0.8, label=label)
  ax.plot(eig.real.ravel(), eig.imag.ravel(), 'o', mfc='none', label='project')
  ax.set_xlabel('real part')
  ax.set_ylabel('imaginary part')
  ax.set_title('eigenvalues at (0, 0), gradient penalty gamma')
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(out, 'eigenvalues.png'), dpi=100)
  plt.close(fig)


def get_reference() -> dict:
  """CLOSED_FORM_REAL as gan_jax.report.verdict rows; the margin is half
  the smallest gap between two methods' closed forms, so that no method's
  rate of convergence reads as another's."""
  forms = sorted(set(CLOSED_FORM_REAL.values()))
  margin = min(b - a for a, b in zip(forms, forms[1:])) / 2
  return {
    'source': 'Mescheder et al. 2018, Sec. 2-3 (closed forms)',
    'rows': [
      {
        'label': METHODS[m][0],
        'where': {'method': m},
        'metrics': {
          'eig_real': {
            'value': value,
            'kind': 'exact',
            'margin': margin,
            'reason': "half the smallest gap between two methods' closed forms",
          }
        },
      }
      for m, value in CLOSED_FORM_REAL.items()
    ],
  }


def write_records(out: str, runs: dict, eigen: dict) -> None:
  """The study's records (gan_jax.report.records) in `out`: per method the
  largest real part of its eigenvalues (eig_real) and the distance after
  STEPS under each scheme (distance_<scheme>), deterministic values."""
  rows = [
    (m, 'game', 'eig_real', 0, max(x for x, _ in eig))
    for m, eig in eigen.items()
    if eig is not None
  ]
  rows += [
    (
      key.split('/')[0],
      'game',
      f'distance_{key.split("/")[1]}',
      0,
      r['distance'],
    )
    for key, r in runs.items()
  ]
  records.write_curves(os.path.join(out, records.EVALS_RUNS), rows)
  records.write_groups(
    os.path.join(out, records.GROUPS),
    {
      m: {'overrides': {}, 'config': {'method': m, 'deterministic': True}}
      for m in METHODS
    },
  )
  records.write_reference(os.path.join(out, records.REFERENCE), get_reference())


def run(out: str) -> dict:
  """Every method under every scheme, the eigenvalue figure, results.json
  and the records."""
  os.makedirs(out, exist_ok=True)
  start = time.perf_counter()
  runs, eigen = {}, {}
  for m in METHODS:
    if m == 'wgan_gp':  # (|psi| - 1)^2 has a kink at psi = 0: no Jacobian
      eigen[m] = None
    else:
      eigen[m] = [
        [float(x.real), float(x.imag)]
        for x in equilibrium_eigenvalues(get_config(m))
      ]
    for s in SCHEMES:
      if m == 'consensus' and s != 'simultaneous':
        continue
      path = trajectory(get_config(m, s))
      d = float(np.hypot(*path[-1]))
      measured, stated = outcome(d), expected(m, s)
      runs[f'{m}/{s}'] = {
        'distance': d,
        'measured': measured,
        'paper': stated,
        'verdict': 'reproduced'
        if agrees(measured, stated)
        else 'not reproduced',
        'trajectory': path[::5].tolist() + [path[-1].tolist()],
      }
      print(
        f'{m:15s} {s:14s} distance {d:9.4f}  {measured:18s} '
        f'paper: {stated:18s} {runs[f"{m}/{s}"]["verdict"]}'
      )
  gammas = np.linspace(0, 1.5, 16)
  eig = []
  for gamma in gammas:
    c = get_config('r1')
    c.r1_gamma = float(gamma)
    eig.append(equilibrium_eigenvalues(c))
  _plot(out, runs, gammas, np.asarray(eig))
  result = {
    'seconds': round(time.perf_counter() - start, 1),
    'runs': {
      k: {a: b for a, b in r.items() if a != 'trajectory'}
      for k, r in runs.items()
    },
    'eigenvalues': eigen,
  }
  with open(os.path.join(out, 'results.json'), 'w') as f:
    json.dump(result, f, indent=1)
  write_records(out, runs, eigen)
  print(f'{result["seconds"]} s; wrote {out}')
  return result


if __name__ == '__main__':
  run(sys.argv[1])
