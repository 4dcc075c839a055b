"""The game's vector field and the eigenvalues of its Jacobian.

With w = (G's parameters, D's parameters) flattened into one vector of n
numbers, the vector field of the update scheme on a fixed minibatch is

  v(w) = -(grad_G L_G(w), grad_D L_D(w))          (every scheme but consensus)
  v(w) = -(grad + gamma J^T grad)                 (consensus)

(the scheme's `Scheme.field`), built from the training step's own pieces
(updates.game_field and updates.consensus_field: objective, penalties, instance noise, packing,
conditioning, BatchNorm in training mode), so that gradient descent is
w <- w + lr v(w) and an equilibrium w* is locally attracting for small
steps when every eigenvalue of the Jacobian J(w*) = dv/dw has a negative
real part (Mescheder et al. 2017; Nagarajan & Kolter 2017). Its leading
eigenvalues come from Jacobian-vector products alone (ARPACK's implicitly
restarted Arnoldi method through scipy.sparse.linalg.eigs), never forming
the n x n matrix (Berard et al. 2020 study them the same way); `dense`
forms it for small n and for tests.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import PartitionSpec as P
from scipy.sparse import linalg as sparse_linalg

from gan_jax import registry, schemes, updates
from gan_jax.train_state import GAN, TrainState
from gan_jax.updates import AXIS, Player


def one_device_mesh():
  """A one-device `data` mesh: the field of the global batch on one device."""
  return jax.make_mesh(
    (1,),
    (AXIS,),
    axis_types=(jax.sharding.AxisType.Auto,),
    devices=jax.devices()[:1],
  )


def vector_field(gan: GAN, config, state: TrainState, batch, key):
  """(v, w0): v maps a flat float32 (n,) w to the field (n,) at w; w0 is the
  state's (G, D) parameters, flattened.

  gan: built with axis_name=updates.AXIS. batch: one minibatch {'real',
  'y_real', 'z', 'y_fake'} (B, ...); key: the step key (dropout, penalty
  points, instance noise), fixed, so v is a deterministic function.
  Statistics, optimizer states and D's adaptive memory are held at the
  state's.
  """
  w0, unravel = ravel_pytree((state.g_params, state.d_params))
  gradients = registry.resolve(schemes.SCHEMES[config.update_scheme].field)
  rules = updates.Rules.of(config)

  def field(w):
    g_params, d_params = unravel(w)
    g = Player(g_params, state.g_stats, None)
    d = Player(d_params, state.d_stats, None, state.adaptive)
    g_grads, d_grads = gradients(gan, rules, g, d, batch, key, state.step)
    return -ravel_pytree((g_grads, d_grads))[0]

  sharded = jax.shard_map(
    field, mesh=one_device_mesh(), in_specs=P(), out_specs=P(), check_vma=False
  )
  return sharded, w0


def dense(v, w) -> np.ndarray:
  """The Jacobian dv/dw (n, n) at w, float64, by forward-mode autodiff."""
  return np.asarray(jax.jit(jax.jacfwd(v))(w), np.float64)


def eigenvalues(v, w, k: int = 6, which: str = 'LM', tol: float = 1e-6):
  """The k eigenvalues of dv/dw at w that `which` picks ('LM' largest
  modulus, 'LR' largest real part), from Jacobian-vector products
  (scipy.sparse.linalg.eigs; needs k < n - 1).

  Returns (eigenvalues complex128 (k,), relative residuals (k,)
  ||J x - lambda x|| / (|lambda| ||x||) with J x by one more JVP each),
  sorted by `which`'s order, largest first.
  """
  n = w.shape[0]
  jvp = jax.jit(lambda t: jax.jvp(v, (w,), (t,))[1])

  def matvec(x):
    x = np.asarray(x).reshape(-1)
    if np.iscomplexobj(x):  # J is real: J (a + ib) = J a + i J b
      return matvec(x.real) + 1j * matvec(x.imag)
    return np.asarray(jvp(jnp.asarray(x, jnp.float32)), np.float64)

  op = sparse_linalg.LinearOperator((n, n), matvec=matvec, dtype=np.float64)
  vals, vecs = sparse_linalg.eigs(op, k=k, which=which, tol=tol)
  key = np.abs(vals) if which == 'LM' else vals.real
  order = np.argsort(-key)
  vals, vecs = vals[order], vecs[:, order]
  residuals = np.array(
    [
      np.linalg.norm(matvec(x) - lam * x) / (abs(lam) * np.linalg.norm(x))
      for lam, x in zip(vals, vecs.T)
    ]
  )
  return vals, residuals
