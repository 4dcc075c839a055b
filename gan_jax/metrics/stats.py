"""Scores from feature statistics: Frechet distance, KID, classifier score.

All host-side numpy in float64. Features are (N, d) arrays (numpy or jax);
class probabilities are (N, K) arrays whose rows sum to 1.
"""

import numpy as np
from scipy import special

# Written into results files next to FD values so they stay comparable.
SQRT_METHOD = 'eigh: tr sqrt(S1^1/2 S2 S1^1/2)'


def gaussian_stats(features):
  """Mean and covariance of features, as used by the Frechet distance.

  Args:
    features: (N, d), N >= 2.

  Returns:
    mu (d,) = mean_n x_n and sigma (d, d) = sum_n (x_n - mu)(x_n - mu)^T
    / (N - 1) (unbiased, ddof=1), both float64.
  """
  x = np.asarray(features, np.float64)
  if x.ndim != 2 or x.shape[0] < 2:
    raise ValueError(f'features must be (N >= 2, d), got {x.shape}')
  return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(
    x.shape[1], x.shape[1]
  )


def _psd_sqrt(s):
  """Symmetric square root of a symmetric PSD matrix via eigh, eigenvalues
  clipped at 0."""
  w, v = np.linalg.eigh((s + s.T) / 2)
  return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
  """Frechet distance between N(mu1, S1) and N(mu2, S2) (Heusel et al. 2017).

    FD = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr (S1 S2)^{1/2}.

  The trace of the square root is computed without sqrtm: S1 S2 is similar
  to the symmetric PSD matrix M = S1^{1/2} S2 S1^{1/2} (S1^{1/2} from eigh
  of S1, negative eigenvalues clipped to 0), so both share eigenvalues
  lambda_i >= 0 and tr (S1 S2)^{1/2} = sum_i sqrt(max(lambda_i, 0)) with
  lambda_i from eigvalsh(M). This is exact for PSD inputs, also singular
  ones, and needs no complex parts or eps offsets on the diagonal; in
  float64 each null direction of S1 S2 may add ~sqrt(1e-16 ||S||) through
  the square root of a rounding-level eigenvalue.

  Args:
    mu1, mu2: (d,) means.
    sigma1, sigma2: (d, d) symmetric PSD covariances.

  Returns:
    The distance as a float64 Python float, clipped at >= 0.
  """
  mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
  s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
  if mu1.shape != mu2.shape or s1.shape != s2.shape:
    raise ValueError('mismatched statistics shapes')
  r1 = _psd_sqrt(s1)
  m = r1 @ s2 @ r1
  lam = np.linalg.eigvalsh((m + m.T) / 2)
  tr_sqrt = np.sqrt(np.clip(lam, 0, None)).sum()
  diff = mu1 - mu2
  fd = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
  return float(max(fd, 0.0))


def _mmd2_unbiased(x, y):
  """Unbiased MMD^2 of x (m, d), y (m, d) under k(a, b) = (a.b / d + 1)^3."""
  m, d = x.shape
  kxx = (x @ x.T / d + 1) ** 3
  kyy = (y @ y.T / d + 1) ** 3
  kxy = (x @ y.T / d + 1) ** 3
  off = m * (m - 1)
  return (
    (kxx.sum() - np.trace(kxx)) / off
    + (kyy.sum() - np.trace(kyy)) / off
    - 2 * kxy.mean()
  )


def kid(real, fake, num_subsets=100, subset_size=1000, seed=0):
  """Kernel Inception Distance (Binkowski et al. 2018).

  For subsets X, Y of equal size m (each drawn without replacement, from
  np.random.default_rng(seed)), the unbiased MMD^2 with the cubic kernel
  k(a, b) = (a.b / d + 1)^3 is

    sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] / (m (m - 1))
      - 2 sum_{i, j} k(x_i, y_j) / m^2,

  with m = min(subset_size, N, M).

  Args:
    real: (N, d) features.
    fake: (M, d) features.
    num_subsets: number of subset pairs averaged over.
    subset_size: the largest m used.
    seed: seed of the subset draws.

  Returns:
    (mean, std) of the per-subset estimates (std with ddof=0); the mean can
    be slightly negative when the distributions match.
  """
  x = np.asarray(real, np.float64)
  y = np.asarray(fake, np.float64)
  if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
    raise ValueError(f'need (N, d), (M, d) features; got {x.shape}, {y.shape}')
  m = min(subset_size, len(x), len(y))
  if m < 2:
    raise ValueError('KID needs subsets of at least 2 samples')
  rng = np.random.default_rng(seed)
  mmds = np.array(
    [
      _mmd2_unbiased(
        x[rng.choice(len(x), m, replace=False)],
        y[rng.choice(len(y), m, replace=False)],
      )
      for _ in range(num_subsets)
    ]
  )
  return float(mmds.mean()), float(mmds.std())


def classifier_score(probs, num_splits=10):
  """Inception-Score-form classifier score (Salimans et al. 2016).

  The rows are cut into `num_splits` contiguous splits; on each split

    score = exp(mean_x KL(p(y|x) || p(y))),  p(y) = mean_x p(y|x),

  with KL = sum_y p log p - p log p(y) and 0 log 0 = 0 (xlogy). It ranges
  from 1 (all rows equal) to K (confident and uniformly spread over classes).

  Args:
    probs: (N, K) class probabilities, rows summing to 1, N >= num_splits.
    num_splits: number of splits.

  Returns:
    (mean, std) of the per-split scores (std with ddof=0).
  """
  p = np.asarray(probs, np.float64)
  if p.ndim != 2 or len(p) < num_splits:
    raise ValueError(f'need (N >= {num_splits}, K) probabilities: {p.shape}')
  scores = []
  for part in np.array_split(p, num_splits):
    py = part.mean(axis=0, keepdims=True)
    kl = (special.xlogy(part, part) - special.xlogy(part, py)).sum(axis=1)
    scores.append(np.exp(kl.mean()))
  scores = np.array(scores)
  return float(scores.mean()), float(scores.std())


# --- as registered metrics (gan_jax.metrics: prepare(ev) -> score(s)) --------


def prepare_fd(ev):
  """'fd': the Fréchet distance of the samples' features to the reference's."""
  ref = gaussian_stats(ev.ref_features)
  return lambda s: {'fd': frechet_distance(*gaussian_stats(s.features), *ref)}


def prepare_kid(ev):
  """'kid': KID and its spread over subsets against the reference."""
  ev.protocol['kid'] = 'cubic kernel, 100 subsets of 1000'

  def score(s):
    value, spread = kid(ev.ref_features, s.features)
    return {'kid': value, 'kid_std': spread}

  return score


def prepare_is(ev):
  """'is': the Inception Score of the samples' class probabilities."""
  ev.protocol['reference_is'] = classifier_score(ev.ref_probs)[0]

  def score(s):
    value, spread = classifier_score(s.probs)
    return {'is': value, 'is_std': spread}

  return score


def raw_features(ev):
  """The 'raw' feature network: the data vectors themselves."""
  del ev
  return (lambda x: (x.reshape(len(x), -1), None)), 'raw data vectors'
