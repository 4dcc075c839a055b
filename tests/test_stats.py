"""Frechet distance, KID and classifier score against reference formulas."""

import itertools

import numpy as np
import pytest
from scipy import linalg

from gan_jax.metrics import stats


def _closed_form_fd(mu1, s1, mu2, s2):
  """Heusel et al.'s formula with scipy's general matrix square root."""
  covmean = linalg.sqrtm(s1 @ s2).real
  diff = mu1 - mu2
  return diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)


def _random_cov(rng, d, rank, floor):
  a = rng.normal(size=(d, rank))
  return a @ a.T / rank + floor * np.eye(d)


@pytest.mark.parametrize(
  'rank, floor, atol',
  [(16, 0.1, 1e-9), (8, 1e-7, 1e-6), (3, 1e-9, 1e-4)],
  ids=['well-conditioned', 'nearly-singular', 'rank-3'],
)
def test_frechet_distance_matches_sqrtm_closed_form(rank, floor, atol):
  rng = np.random.default_rng(rank)
  d = 8
  mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
  s1 = _random_cov(rng, d, rank, floor)
  s2 = _random_cov(rng, d, rank, floor)
  got = stats.frechet_distance(mu1, s1, mu2, s2)
  assert got == pytest.approx(_closed_form_fd(mu1, s1, mu2, s2), abs=atol)


def test_frechet_distance_exact_for_singular_commuting_covariances():
  # Shared eigenvectors: tr (S1 S2)^1/2 = sum_i sqrt(a_i b_i) exactly.
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
  a = np.array([3.0, 2.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0])
  b = np.array([1.0, 0.0, 4.0, 2.0, 1.0, 0.0, 0.0, 0.0])
  s1, s2 = (q * a) @ q.T, (q * b) @ q.T
  mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
  want = np.sum((mu1 - mu2) ** 2) + a.sum() + b.sum() - 2 * np.sqrt(a * b).sum()
  got = stats.frechet_distance(mu1, s1, mu2, s2)
  # Rounding leaves ~1e-16 eigenvalues in the 4 null directions; their square
  # roots add ~1e-8 each (sqrtm errs by as much here).
  assert got == pytest.approx(want, abs=1e-6)


def test_frechet_distance_zero_for_identical_and_symmetric():
  rng = np.random.default_rng(1)
  mu = rng.normal(size=8)
  s = _random_cov(rng, 8, 8, 1e-3)
  assert stats.frechet_distance(mu, s, mu, s) == pytest.approx(0, abs=1e-10)
  mu2, s2 = rng.normal(size=8), _random_cov(rng, 8, 4, 0.0)
  fwd = stats.frechet_distance(mu, s, mu2, s2)
  assert fwd > 1
  # s2 has rank 4: each of its 4 null directions may add ~1e-8 through the
  # square root of a rounding-level eigenvalue (see frechet_distance), and
  # the two orders round differently (2e-9 apart with numpy 2.4's LAPACK).
  back = stats.frechet_distance(mu2, s2, mu, s)
  assert back == pytest.approx(fwd, abs=4e-8)


def test_gaussian_stats_recovers_gaussian():
  rng = np.random.default_rng(2)
  mu = np.array([1.0, -2.0, 0.5])
  s = _random_cov(rng, 3, 3, 0.5)
  x = rng.multivariate_normal(mu, s, size=200_000).astype(np.float32)
  got_mu, got_s = stats.gaussian_stats(x)
  assert got_mu.dtype == got_s.dtype == np.float64
  assert got_s.shape == (3, 3)
  np.testing.assert_allclose(got_mu, mu, atol=0.02)
  np.testing.assert_allclose(got_s, s, atol=0.03)
  # ddof=1 on a tiny set.
  y = rng.normal(size=(4, 3))
  c = y - y.mean(axis=0)
  np.testing.assert_allclose(stats.gaussian_stats(y)[1], c.T @ c / 3)


def test_kid_near_zero_for_same_distribution_positive_for_shifted():
  rng = np.random.default_rng(3)
  real = rng.normal(size=(2000, 16))
  same = rng.normal(size=(2000, 16))
  mean, std = stats.kid(real, same, num_subsets=50, subset_size=500)
  assert std > 0
  assert abs(mean) < 3 * std
  mean, std = stats.kid(real, same + 0.5, num_subsets=50, subset_size=500)
  assert mean > 10 * std


def test_kid_matches_brute_force_unbiased_mmd():
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(6, 3)), rng.normal(0.3, 1.2, size=(6, 3))

  def k(a, b):
    return (np.dot(a, b) / 3 + 1) ** 3

  m = len(x)
  pairs = [(i, j) for i, j in itertools.product(range(m), repeat=2) if i != j]
  want = (
    sum(k(x[i], x[j]) + k(y[i], y[j]) for i, j in pairs) / (m * (m - 1))
    - 2 * sum(k(a, b) for a in x for b in y) / m**2
  )
  # Whole-set subsets are permutations, and the estimate ignores order.
  mean, std = stats.kid(x, y, num_subsets=3, subset_size=100)
  assert mean == pytest.approx(want, rel=1e-12)
  assert std == pytest.approx(0, abs=1e-12)


def test_classifier_score_extremes():
  k = 7
  one_hot = np.tile(np.eye(k), (10, 1))  # every split holds each class once
  mean, std = stats.classifier_score(one_hot, num_splits=10)
  assert mean == pytest.approx(k, rel=1e-12)
  assert std == pytest.approx(0, abs=1e-12)
  rows = np.tile(np.random.default_rng(5).dirichlet(np.ones(k)), (50, 1))
  mean, std = stats.classifier_score(rows, num_splits=5)
  assert mean == pytest.approx(1, abs=1e-12)


def test_classifier_score_two_class_closed_form():
  # Split of rows (1, 0) and (q, 1 - q) in equal numbers.
  q = 0.3
  probs = np.array([[1.0, 0.0], [q, 1 - q]] * 4)
  py = np.array([(1 + q) / 2, (1 - q) / 2])
  kl1 = np.log(1 / py[0])
  kl2 = q * np.log(q / py[0]) + (1 - q) * np.log((1 - q) / py[1])
  mean, _ = stats.classifier_score(probs, num_splits=2)
  assert mean == pytest.approx(np.exp((kl1 + kl2) / 2), rel=1e-12)


def test_classifier_score_is_mean_over_separate_splits():
  # Split 1 is confident and uniform (score K), split 2 identical rows (1);
  # one p(y) over both splits would give other values.
  k = 4
  row = np.array([0.7, 0.1, 0.1, 0.1])
  probs = np.concatenate([np.eye(k), np.tile(row, (k, 1))])
  mean, std = stats.classifier_score(probs, num_splits=2)
  assert mean == pytest.approx((k + 1) / 2, rel=1e-12)
  assert std == pytest.approx((k - 1) / 2, rel=1e-12)
