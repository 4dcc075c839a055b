"""The game's vector field and Jacobian (gan_jax.dynamics): the Dirac-GAN's
eigenvalues at its equilibrium against Mescheder et al. 2018's closed forms,
its trajectories against the paper's statements, and the matrix-free
eigenvalues of a tiny MLP GAN against its dense Jacobian."""

import json
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from gan_jax import dynamics, jacobian, train, updates
from experiments import dirac_gan, toy_ring

F1 = 0.5  # f'(0) of f(t) = -log(1 + e^-t)
F2 = -0.25  # f''(0)
TOL = 1e-6
REPO = pathlib.Path(__file__).resolve().parents[1]


def _pair(a, b):
  """Eigenvalues a +- b (b real or imaginary), sorted as dirac_gan sorts."""
  vals = np.array([a + b, a - b])
  return vals[np.lexsort((vals.real, vals.imag))]


def _eig(method, **fields):
  c = dirac_gan.get_config(method)
  c.update(fields)
  return dirac_gan.equilibrium_eigenvalues(c)


@pytest.mark.parametrize('method', ['gan', 'nsgan'])
def test_unregularised_gan_has_imaginary_eigenvalues(method):
  np.testing.assert_allclose(_eig(method), _pair(0, 1j * F1), atol=TOL)


def test_wgan_has_eigenvalues_plus_minus_i():
  """f(t) = t: f'(0) = 1."""
  np.testing.assert_allclose(_eig('wgan'), _pair(0, 1j), atol=TOL)


@pytest.mark.parametrize('penalty', ['r1_gamma', 'r2_gamma'])
@pytest.mark.parametrize('gamma', [0.3, 1.0, 1.6])
def test_zero_centred_penalty_eigenvalues(penalty, gamma):
  """-gamma/2 +- sqrt(gamma^2/4 - f'(0)^2), R1 on data and R2 on samples
  alike (both penalise gamma/2 psi^2 here)."""
  root = np.sqrt(complex(gamma**2 / 4 - F1**2))
  fields = {'r1_gamma': 0.0, penalty: gamma}
  np.testing.assert_allclose(
    _eig('gan', **fields), _pair(-gamma / 2, root), atol=TOL
  )


@pytest.mark.parametrize('gamma', [0.5, 1.0])
def test_consensus_eigenvalues(gamma):
  """-gamma f'(0)^2 +- f'(0) i."""
  np.testing.assert_allclose(
    _eig('consensus', consensus_gamma=gamma),
    _pair(-gamma * F1**2, 1j * F1),
    atol=TOL,
  )


def test_instance_noise_eigenvalues():
  """f''(0) s^2 +- sqrt(f''(0)^2 s^4 - f'(0)^2) with 2 s^2 the sum of the
  second moments of the noise D saw on data and on samples (sigma^2 each in
  expectation): exact with the draws of the step, close with sigma."""
  sigma = 0.7
  c = dirac_gan.get_config('instance_noise')
  key = jax.random.PRNGKey(3)
  vals = dirac_gan.equilibrium_eigenvalues(c, key)
  # The draws D's loss made (updates.d_loss: fold_in(fold_in(key, 0), 3)).
  k_real, k_fake = jax.random.split(
    jax.random.fold_in(jax.random.fold_in(key, 0), 3)
  )
  zeros = np.zeros((c.batch_size, 1), np.float32)
  noise = updates.Rules.of(c).noise
  moments = [
    float(np.mean(np.square(updates.add_noise(noise, zeros, k, 0))))
    for k in (k_real, k_fake)
  ]
  s2 = sum(moments) / 2
  root = np.sqrt(complex(F2**2 * s2**2 - F1**2))
  np.testing.assert_allclose(vals, _pair(F2 * s2, root), atol=TOL)
  root = np.sqrt(complex(F2**2 * sigma**4 - F1**2))
  np.testing.assert_allclose(
    vals, _pair(F2 * sigma**2, root), atol=0.02, rtol=0
  )


@pytest.mark.parametrize(
  'method, scheme',
  [
    ('gan', 'simultaneous'),
    ('gan', 'alternating_1'),
    ('wgan', 'alternating_5'),
    ('wgan_gp', 'simultaneous'),
    ('instance_noise', 'alternating_1'),
    ('r1', 'simultaneous'),
    ('r1_critical', 'alternating_5'),
    ('consensus', 'simultaneous'),
    ('nsgan_r1', 'alternating_1'),
  ],
)
def test_trajectory_does_what_the_paper_states(method, scheme):
  """The distance to (0, 0) after 500 steps of the project's step:
  converged, diverged or neither, as Mescheder et al. 2018 state."""
  path = dirac_gan.trajectory(dirac_gan.get_config(method, scheme))
  assert path.shape == (dirac_gan.STEPS + 1, 2)
  distance = float(np.hypot(*path[-1]))
  stated = dirac_gan.expected(method, scheme)
  assert dirac_gan.agrees(dirac_gan.outcome(distance), stated), (
    distance,
    stated,
  )


def _tiny_ring(tmp_path, scheme, steps=20):
  """A trained tiny ring MLP GAN's run directory (n = 75 parameters)."""
  c = toy_ring.get_config('smoke')
  c.model.g.hidden, c.model.d.hidden = (8,), (8,)
  c.batch_size, c.num_steps, c.steps_per_dispatch = 16, steps, 10
  c.log_every = c.sample_every = c.checkpoint_every = 10
  c.eval.every, c.eval.metrics, c.eval.best_metric = 0, 'modes', ''
  c.update_scheme, c.consensus_gamma = scheme, 0.5
  train.train_and_evaluate(c, str(tmp_path))


@pytest.mark.parametrize('scheme', ['alternating', 'consensus'])
def test_matrix_free_eigenvalues_match_the_dense_jacobian(tmp_path, scheme):
  """Arnoldi on JVPs at a run's checkpoint against eig of jacfwd."""
  _tiny_ring(tmp_path, scheme)
  _, state, v, w0 = jacobian.run_field(str(tmp_path), None, seed=0)
  assert int(state.step) == 20
  full = np.linalg.eigvals(dynamics.dense(v, w0))
  for which, key in (('LM', np.abs), ('LR', np.real)):
    vals, residuals = dynamics.eigenvalues(v, w0, k=4, which=which)
    want = full[np.argsort(-key(full), kind='stable')][:4]
    np.testing.assert_allclose(
      np.sort(key(vals)), np.sort(key(want)), atol=1e-4, rtol=1e-4
    )
    for x in vals:
      assert np.min(np.abs(full - x)) < 1e-4 * max(1.0, abs(x))
    assert np.all(residuals < 1e-3)


def test_jacobian_command_writes_eigenvalues_and_figure(tmp_path):
  _tiny_ring(tmp_path, 'simultaneous')
  out = subprocess.run(
    [
      sys.executable,
      '-m',
      'gan_jax.jacobian',
      f'--workdir={tmp_path}',
      '--k=2',
    ],
    capture_output=True,
    text=True,
    check=True,
    cwd=REPO,
  ).stdout
  assert 'largest modulus' in out and 'largest real' in out
  result = json.loads((tmp_path / 'jacobian' / 'step_000020.json').read_text())
  assert result['parameters'] == 75 and result['method'] == 'arnoldi'
  assert len(result['eigenvalues']['largest_real']) == 2
  assert (tmp_path / 'jacobian' / 'step_000020.png').exists()
