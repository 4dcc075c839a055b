"""k-NN precision/recall and density/coverage on hand-checkable sets."""

import numpy as np
import pytest

from gan_jax.metrics import manifold


def _line(n):
  """Real points (0, 0), (1, 0), ..., (n - 1, 0): every 1-NN radius is 1."""
  return np.stack([np.arange(n, dtype=float), np.zeros(n)], axis=1)


def test_identical_sets_are_fully_precise_and_covered():
  x = np.random.default_rng(0).normal(size=(300, 16))
  assert manifold.precision_recall(x, x, block=128) == (1.0, 1.0)
  _, coverage = manifold.density_coverage(x, x, block=128)
  assert coverage == 1.0


def test_far_apart_sets_score_zero():
  x = np.random.default_rng(1).normal(size=(200, 16))
  assert manifold.precision_recall(x, x + 100, block=64) == (0.0, 0.0)
  assert manifold.density_coverage(x, x + 100, block=64) == (0.0, 0.0)


def test_knn_radii_match_brute_force():
  x = np.random.default_rng(2).normal(size=(300, 8))
  d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
  np.fill_diagonal(d, np.inf)
  for k in (1, 3, 5):
    want = np.sort(d, axis=1)[:, k - 1]
    np.testing.assert_allclose(manifold.knn_radii(x, k, block=64), want, 1e-4)


def test_knn_radii_count_duplicates_as_neighbours():
  x = np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])
  np.testing.assert_allclose(manifold.knn_radii(x, 1), [0, 0, 5], atol=1e-6)
  np.testing.assert_allclose(manifold.knn_radii(x, 2), [5, 5, 5], rtol=1e-6)


def test_precision_recall_hand_built():
  real = _line(10)  # k=1 radii 1
  # Three fakes 0.8 above reals 0, 1, 2 (1-NN radius 1 among fakes, so each
  # covers only the real below it: the next real is 1.28 away), and a far
  # pair that lies in no real ball and whose radius-1 balls hold no real.
  fake = np.array([[0, 0.8], [1, 0.8], [2, 0.8], [50, 50], [50, 51]])
  p, r = manifold.precision_recall(real, fake, k=1)
  assert p == pytest.approx(3 / 5)
  assert r == pytest.approx(3 / 10)


def test_balls_are_closed():
  # (2, 1) is exactly 1 = radius from real 2 (exact in float32), sqrt(2)
  # from reals 1 and 3; (50, 50) is in no ball.
  fake = np.array([[2.0, 1.0], [50.0, 50.0]])
  assert manifold.precision_recall(_line(10), fake, k=1)[0] == 0.5
  assert manifold.density_coverage(_line(10), fake, k=1) == (0.5, 0.1)


@pytest.mark.parametrize(
  'k, density',
  [
    # Every 1-NN radius is 1: the fakes above reals lie in one ball each,
    # (5.5, 0) in the balls of reals 5 and 6, the far pair in none.
    (1, (1 + 1 + 1 + 2) / (1 * 6)),
    # 2-NN radii are 2 at the ends, 1 inside: (1, 0.8) is now also in the
    # ball of real 0 (1.28 away); (0, 0.8) and (2, 0.8) are 2.15 from the
    # other end ball.
    (2, (1 + 2 + 1 + 2) / (2 * 6)),
  ],
)
def test_density_coverage_hand_built(k, density):
  fake = np.array([[0, 0.8], [1, 0.8], [2, 0.8], [5.5, 0], [50, 50], [50, 51]])
  got_density, coverage = manifold.density_coverage(_line(10), fake, k=k)
  assert got_density == pytest.approx(density)
  assert coverage == pytest.approx(5 / 10)  # reals 0, 1, 2, 5, 6


def test_block_size_not_dividing_n_matches_single_block():
  rng = np.random.default_rng(3)
  real = rng.normal(size=(300, 8))
  fake = rng.normal(0.2, 1.1, size=(250, 8))
  pr_one = manifold.precision_recall(real, fake, block=512)
  pr_many = manifold.precision_recall(real, fake, block=64)
  dc_one = manifold.density_coverage(real, fake, block=512)
  dc_many = manifold.density_coverage(real, fake, block=64)
  assert 0 < pr_one[0] < 1 and 0 < pr_one[1] < 1
  assert 0 < dc_one[1] < 1
  assert pr_many == pr_one
  assert dc_many == pytest.approx(dc_one)
  np.testing.assert_allclose(
    manifold.knn_radii(real, 3, block=64),
    manifold.knn_radii(real, 3, block=512),
    rtol=1e-6,
  )
