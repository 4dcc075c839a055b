"""Mode coverage on a ring of Gaussians with known hits and outliers."""

import numpy as np
import pytest

from gan_jax.metrics import modes

K, STD = 8, 0.02
CENTRES = 2 * np.stack(
  [np.cos(2 * np.pi * np.arange(K) / K), np.sin(2 * np.pi * np.arange(K) / K)],
  axis=1,
)


def _near(rng, k, n, max_dist):
  """n points around centre k at distances below max_dist."""
  angle = rng.uniform(0, 2 * np.pi, n)
  r = rng.uniform(0, max_dist, n)
  return CENTRES[k] + r[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)


def _samples():
  """5 of 8 modes hit with counts 10, 20, 30, 5, 1, plus 10 outliers."""
  rng = np.random.default_rng(0)
  counts = {0: 10, 2: 20, 3: 30, 5: 5, 7: 1}
  good = [_near(rng, k, n, 2.5 * STD) for k, n in counts.items()]
  # 6 at the origin (2 away from every mode), 4 at 4 std from mode 1.
  bad = [np.zeros((6, 2)), CENTRES[1] + 4 * STD * np.array([[1.0, 0.0]] * 4)]
  return np.concatenate(good + bad), np.array(list(counts.values()))


def test_counts_quality_and_reverse_kl():
  x, counts = _samples()
  got = modes.mode_coverage(x, CENTRES, STD)
  p = counts / counts.sum()
  assert got['modes'] == 5
  assert got['high_quality'] == pytest.approx(100 * 66 / 76)
  assert got['reverse_kl'] == pytest.approx(np.sum(p * np.log(p * K)))


def test_min_count_respected():
  x, _ = _samples()
  assert modes.mode_coverage(x, CENTRES, STD, min_count=5)['modes'] == 4
  assert modes.mode_coverage(x, CENTRES, STD, min_count=11)['modes'] == 2


def test_uniform_coverage_and_no_high_quality_samples():
  rng = np.random.default_rng(1)
  x = np.concatenate([_near(rng, k, 7, 2 * STD) for k in range(K)])
  got = modes.mode_coverage(x, CENTRES, STD)
  assert got == {'modes': K, 'high_quality': 100.0, 'reverse_kl': 0.0}
  got = modes.mode_coverage(np.zeros((5, 2)), CENTRES, STD)
  assert got['modes'] == 0 and got['high_quality'] == 0.0
  assert got['reverse_kl'] == pytest.approx(np.log(K))
