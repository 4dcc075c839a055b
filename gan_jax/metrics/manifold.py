"""k-NN manifold metrics: improved precision/recall, density/coverage.

Squared distances ||a||^2 - 2 a.b + ||b||^2 are formed in float32 under jit,
clipped at 0, one block of query rows against the whole reference set at a
time, so an N x M matrix never exists (peak memory block x M floats). The
last block is zero-padded to the block size, so each function compiles once
per shape. Both sets are first centred on the mean of the first (real) set,
which leaves distances unchanged and reduces float32 cancellation.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np


def _sq_dists(a, b, b_sq):
  """(B, d), (M, d), (M,) -> (B, M) squared distances, clipped at 0."""
  a_sq = jnp.sum(a * a, axis=1, keepdims=True)
  return jnp.maximum(a_sq - 2 * a @ b.T + b_sq[None, :], 0.0)


@functools.partial(jax.jit, static_argnames='k')
def _kth_sq_block(a, rows, x, x_sq, k):
  """k-th smallest squared distance from a (B, d) to x (M, d), excluding
  column rows[b] (the point itself) for each row b.

  The k - 1 nearest columns are masked one argmin at a time, then the min is
  taken: k passes over the block, far faster than lax.top_k on XLA:CPU
  (about 1.5 s against 20 s for 10k x 10k, k=3) and exact with ties.
  """
  cols = jnp.arange(x.shape[0])[None, :]
  d2 = jnp.where(cols == rows[:, None], jnp.inf, _sq_dists(a, x, x_sq))

  def drop_nearest(_, d):
    return jnp.where(cols == jnp.argmin(d, axis=1)[:, None], jnp.inf, d)

  return jax.lax.fori_loop(0, k - 1, drop_nearest, d2).min(axis=1)


@jax.jit
def _ball_block(a, valid, ref, ref_sq, ref_r2):
  """For queries a (B, d) (valid (B,) marks real rows) and balls around ref
  (M, d) with squared radii ref_r2 (M,): the number of balls holding each
  query (B,) and, per ball, whether a valid query lies in it (M,)."""
  inside = (_sq_dists(a, ref, ref_sq) <= ref_r2[None, :]) & valid[:, None]
  return inside.sum(axis=1), inside.any(axis=0)


def _blocks(a, block):
  """Yields (start, zero-padded block (block, d), valid (block,))."""
  n = a.shape[0]
  for start in range(0, n, block):
    chunk = a[start : start + block]
    valid = np.arange(block) < len(chunk)
    if len(chunk) < block:
      chunk = np.pad(chunk, ((0, block - len(chunk)), (0, 0)))
    yield start, jnp.asarray(chunk), jnp.asarray(valid)


def _prepare(real, *others):
  """float32 copies of the sets, all centred on the mean of `real`."""
  r = np.asarray(real, np.float64)
  if r.ndim != 2:
    raise ValueError(f'features must be (N, d), got {r.shape}')
  centre = r.mean(axis=0)
  out = [(r - centre).astype(np.float32)]
  for o in others:
    o = np.asarray(o, np.float64)
    if o.ndim != 2 or o.shape[1] != r.shape[1]:
      raise ValueError(f'feature shapes differ: {r.shape} vs {o.shape}')
    out.append((o - centre).astype(np.float32))
  return out


def _kth_sq(x, k, block):
  """(N,) squared distance of each row of float32 x to its k-th nearest
  other row, as a device array."""
  n = x.shape[0]
  if not 1 <= k < n:
    raise ValueError(f'need 1 <= k < N, got k={k}, N={n}')
  xd = jnp.asarray(x)
  x_sq = jnp.sum(xd * xd, axis=1)
  outs = [
    _kth_sq_block(a, start + jnp.arange(block), xd, x_sq, k)
    for start, a, _ in _blocks(x, block)
  ]
  return jnp.concatenate(outs)[:n]


def _balls(queries, ref, ref_r2, block):
  """(Q,) count of ref balls holding each query, (M,) ball holds a query."""
  refd = jnp.asarray(ref)
  ref_sq = jnp.sum(refd * refd, axis=1)
  counts, covered = [], jnp.zeros(ref.shape[0], bool)
  for _, a, valid in _blocks(queries, block):
    c, cov = _ball_block(a, valid, refd, ref_sq, ref_r2)
    counts.append(c)
    covered = covered | cov
  counts = np.asarray(jnp.concatenate(counts))[: queries.shape[0]]
  return counts, np.asarray(covered)


def knn_radii(x, k, block=1024):
  """k-NN radii: distance from each point to its k-th nearest other point.

  Args:
    x: (N, d) points.
    k: neighbour rank, 1 <= k < N (the point itself is excluded; exact
      duplicates count as neighbours at distance 0).
    block: rows per device block.

  Returns:
    (N,) float32 numpy radii NND_k(x_i).
  """
  (xf,) = _prepare(x)
  return np.sqrt(np.asarray(_kth_sq(xf, k, block)))


def precision_recall(real, fake, k=3, block=1024):
  """Improved precision and recall (Kynkaanniemi et al. 2019).

  With B(z, r) the closed ball of radius r at z and NND_k the k-NN radius
  within a point's own set:
    precision = (1/M) sum_j 1[exists i: ||f_j - r_i|| <= NND_k(r_i)],
    recall    = (1/N) sum_i 1[exists j: ||r_i - f_j|| <= NND_k(f_j)].

  Args:
    real: (N, d) real features.
    fake: (M, d) generated features.
    k: neighbour rank of the radii (the paper uses 3).
    block: rows per device block.

  Returns:
    (precision, recall) as Python floats in [0, 1].
  """
  r, f = _prepare(real, fake)
  prec_counts, _ = _balls(f, r, _kth_sq(r, k, block), block)
  rec_counts, _ = _balls(r, f, _kth_sq(f, k, block), block)
  return float(np.mean(prec_counts > 0)), float(np.mean(rec_counts > 0))


def density_coverage(real, fake, k=5, block=1024):
  """Density and coverage (Naeem et al. 2020).

  With balls B(r_i, NND_k(r_i)) around the N real points only:
    density  = 1/(k M) sum_j sum_i 1[f_j in B(r_i, NND_k(r_i))],
    coverage = 1/N sum_i 1[exists j: f_j in B(r_i, NND_k(r_i))].

  Args:
    real: (N, d) real features.
    fake: (M, d) generated features.
    k: neighbour rank of the radii (the paper uses 5).
    block: rows per device block.

  Returns:
    (density, coverage) as Python floats; density can exceed 1.
  """
  r, f = _prepare(real, fake)
  counts, covered = _balls(f, r, _kth_sq(r, k, block), block)
  return float(counts.sum() / (k * len(f))), float(covered.mean())


def prepare_pr(ev):
  """'pr': precision and recall (k = 3) against the reference features."""

  def score(s):
    p, r = precision_recall(ev.ref_features, s.features, k=3)
    return {'precision': p, 'recall': r}

  return score


def prepare_dc(ev):
  """'dc': density and coverage (k = 5) against the reference features."""

  def score(s):
    d, c = density_coverage(ev.ref_features, s.features, k=5)
    return {'density': d, 'coverage': c}

  return score
