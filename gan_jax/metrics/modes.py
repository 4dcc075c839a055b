"""Mode coverage on 2-D Gaussian mixtures (rings and grids of modes).

The protocol of PacGAN (Lin et al. 2018), after VEEGAN (Srivastava et al.
2017): count modes hit by high-quality samples and compare the histogram of
those samples over the modes with the uniform target.
"""

import numpy as np
from scipy import special


def mode_coverage(samples, centres, std, min_count=1):
  """Modes captured, share of high-quality samples, reverse KL to uniform.

  Each sample is assigned to its nearest centre c(x) and is high quality if
  ||x - c(x)|| <= 3 std. With n_k the number of high-quality samples
  assigned to mode k and p_k = n_k / sum_k n_k,
    modes        = #{k: n_k >= min_count},
    high_quality = 100 * (sum_k n_k) / N,
    reverse_kl   = KL(p || uniform) = sum_k p_k log(p_k K), 0 log 0 = 0.
  With no high-quality samples p is undefined; reverse_kl is then log K,
  the value for a histogram on a single mode (the worst case).

  Args:
    samples: (N, 2) generated points.
    centres: (K, 2) mixture means.
    std: the mixture components' standard deviation.
    min_count: high-quality samples a mode needs to count as captured.

  Returns:
    {'modes': int, 'high_quality': float in [0, 100], 'reverse_kl': float}.
  """
  x = np.asarray(samples, np.float64)
  c = np.asarray(centres, np.float64)
  if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1] or not len(x):
    raise ValueError(f'need (N, 2), (K, 2); got {x.shape}, {c.shape}')
  d2 = ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1)
  nearest = d2.argmin(axis=1)
  hq = np.sqrt(d2[np.arange(len(x)), nearest]) <= 3 * std
  counts = np.bincount(nearest[hq], minlength=len(c))
  num_k = len(c)
  if hq.any():
    p = counts / counts.sum()
    reverse_kl = float(special.xlogy(p, p * num_k).sum())
  else:
    reverse_kl = float(np.log(num_k))
  return {
    'modes': int((counts >= min_count).sum()),
    'high_quality': float(100 * hq.mean()),
    'reverse_kl': reverse_kl,
  }


def prepare(ev):
  """'modes' as registered: coverage of ev's mixture (its dataset's std)."""
  centres, std = ev.dataset.load(ev.config.data)['centres'], ev.dataset.std
  ev.protocol['modes'] = (
    f'high quality: within 3 std ({std}) of the nearest mode'
  )
  return lambda s: mode_coverage(s.samples, centres, std)
