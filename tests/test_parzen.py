"""Parzen-window log-likelihood against scipy's Gaussian densities; its
distances are full float32 products on every backend."""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special
from scipy.stats import multivariate_normal

from gan_jax.metrics import parzen


def _analytic(samples, x, sigma):
  """(N,) log (1/S) sum_s N(x; s, sigma^2 I) with scipy."""
  d = samples.shape[1]
  logs = np.stack(
    [multivariate_normal(s, sigma**2 * np.eye(d)).logpdf(x) for s in samples]
  )
  return special.logsumexp(logs, axis=0) - np.log(len(samples))


@pytest.fixture(scope='module')
def data():
  rng = np.random.default_rng(0)
  mu = np.array([2.0, -1.0, 0.5, 3.0, 0.0])
  draw = lambda n: mu + rng.normal(size=(n, 5))  # noqa: E731
  return draw(200), draw(60), draw(50)


@pytest.mark.parametrize('sigma', [0.2, 0.7])
def test_log_density_matches_scipy_mixture(data, sigma):
  samples, _, test = data
  got = parzen.log_density(samples, test, sigma, block=16)  # 50 = 3*16 + 2
  assert got.shape == (50,)
  np.testing.assert_allclose(got, _analytic(samples, test, sigma), rtol=1e-4)


def test_select_sigma_picks_best_grid_point(data):
  samples, valid, _ = data
  sigmas = np.logspace(-1, 0.3, 8)
  want = np.array([_analytic(samples, valid, s).mean() for s in sigmas])
  best = int(np.argmax(want))
  assert 0 < best < len(sigmas) - 1  # an interior optimum
  sigma, means = parzen.select_sigma(samples, valid, sigmas)
  assert sigma == sigmas[best]
  np.testing.assert_allclose(means, want, rtol=1e-4)


def test_evaluate_reports_mean_and_standard_error(data):
  samples, valid, test = data
  sigmas = np.logspace(-1, 0.3, 8)
  got = parzen.evaluate(samples, valid, test, sigmas)
  sigma = got['parzen_sigma']
  assert sigma == parzen.select_sigma(samples, valid, sigmas)[0]
  ll = _analytic(samples, test, sigma)
  assert got['parzen_ll'] == pytest.approx(ll.mean(), rel=1e-4)
  se = np.sqrt(((ll - ll.mean()) ** 2).sum() / (len(ll) - 1) / len(ll))
  assert got['parzen_se'] == pytest.approx(se, rel=1e-3)


def test_distances_are_full_float32_products():
  """The distance matmul asks for Precision.HIGHEST (a GPU would otherwise
  take TensorFloat-32); XLA:CPU keeps the request in the lowered program."""
  x, s = jnp.ones((4, 3)), jnp.ones((5, 3))
  text = parzen._lse_block.lower(x, s, jnp.ones(5), jnp.ones(2)).as_text()
  dots = [line for line in text.splitlines() if 'dot_general' in line]
  assert dots and all('HIGHEST, HIGHEST' in line for line in dots), dots
