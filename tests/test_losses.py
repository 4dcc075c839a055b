"""Tests for gan_jax.losses: closed-form values and gradients (numpy float64 references
against JAX float32), stability at extreme logits, and the regularisers on critics whose
input gradient is known analytically."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

REAL = np.array([-3.0, -0.5, 0.0, 2.0])
FAKE = np.array([-1.5, 0.3, 4.0, -2.0])  # avoids the hinge kinks at +-1
B = len(REAL)
TOL = dict(rtol=1e-5, atol=1e-6)


def sig(x):
  """Numerically stable logistic sigmoid in float64."""
  x = np.asarray(x, np.float64)
  e = np.exp(-np.abs(x))
  return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sp(x):
  """softplus(x) = log(1 + e^x) = -log sigmoid(-x), stable in float64."""
  x = np.asarray(x, np.float64)
  return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


# Closed forms, r = real logits, f = fake logits, mean over B examples:
#   -log D(l) = sp(-l), d/dl = sig(l) - 1;   -log(1 - D(l)) = sp(l), d/dl = sig(l).
def _standard_d(r, f):
  return sp(-r).mean() + sp(f).mean(), ((sig(r) - 1) / B, sig(f) / B)


def _ras(r, f):
  return r - f.mean(), f - r.mean()  # Dr, Df


def _ras_d(r, f):
  # L = mean sp(-Dr) + mean sp(Df); Dr_i depends on all f_j (coef -1/B), Df_i on all r_j.
  dr, df = _ras(r, f)
  gr = (sig(dr) - 1) / B - sig(df).mean() / B
  gf = sig(df) / B + (1 - sig(dr)).mean() / B
  return sp(-dr).mean() + sp(df).mean(), (gr, gf)


def _ras_g(r, f):
  # L = mean sp(-Df) + mean sp(Dr)
  dr, df = _ras(r, f)
  gf = (sig(df) - 1) / B - sig(dr).mean() / B
  gr = sig(dr) / B + (1 - sig(df)).mean() / B
  return sp(-df).mean() + sp(dr).mean(), (gr, gf)


# name -> (d value & (dL/dr, dL/df), g value & (dL/dr, dL/df)); dL/dr of g is 0 unless
# the generator loss is relativistic.
Z = np.zeros(B)
REFERENCE = {
  # g = E[log(1 - D(f))] = -mean sp(f), d/df = -sig(f)/B
  'minimax': (_standard_d, lambda r, f: (-sp(f).mean(), (Z, -sig(f) / B))),
  # g = -E[log D(f)] = mean sp(-f), d/df = (sig(f) - 1)/B
  'non_saturating': (
    _standard_d,
    lambda r, f: (sp(-f).mean(), (Z, (sig(f) - 1) / B)),
  ),
  # d = 1/2 E[(r-1)^2] + 1/2 E[f^2], g = 1/2 E[(f-1)^2] (0-1 coding a=0, b=1, c=1)
  'least_squares': (
    lambda r, f: (
      0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean(),
      ((r - 1) / B, f / B),
    ),
    lambda r, f: (0.5 * ((f - 1) ** 2).mean(), (Z, (f - 1) / B)),
  ),
  # d = E[f] - E[r], g = -E[f]
  'wasserstein': (
    lambda r, f: (f.mean() - r.mean(), (-np.ones(B) / B, np.ones(B) / B)),
    lambda r, f: (-f.mean(), (Z, -np.ones(B) / B)),
  ),
  # d = E[relu(1 - r)] + E[relu(1 + f)], d/dr = -[r < 1]/B, d/df = [f > -1]/B; g = -E[f]
  'hinge': (
    lambda r, f: (
      np.maximum(1 - r, 0).mean() + np.maximum(1 + f, 0).mean(),
      (-(r < 1.0).astype(float) / B, (f > -1.0).astype(float) / B),
    ),
    lambda r, f: (-f.mean(), (Z, -np.ones(B) / B)),
  ),
  'relativistic_average': (_ras_d, _ras_g),
}
REFERENCE['wasserstein_gp'] = REFERENCE['wasserstein']
REFERENCE['dragan'] = (REFERENCE['minimax'][0], REFERENCE['non_saturating'][1])


def _g(loss):
  """g_loss as a function of (real, fake), so it can be differentiated in both."""
  return lambda r, f: loss.g_loss(f, r)


def test_reference_covers_registry():
  assert set(REFERENCE) == set(losses.LOSSES)


@pytest.mark.parametrize('name', sorted(losses.LOSSES))
@pytest.mark.parametrize('which', ['d', 'g'])
@pytest.mark.parametrize('shape', [(B,), (B, 1)])
def test_value_and_gradient_closed_form(name, which, shape):
  """Value and (dL/d real_logits, dL/d fake_logits) against the float64 closed forms."""
  loss = losses.get(name)
  fn = loss.d_loss if which == 'd' else _g(loss)
  ref_value, (ref_gr, ref_gf) = REFERENCE[name][which == 'g'](REAL, FAKE)
  r = jnp.asarray(REAL, jnp.float32).reshape(shape)
  f = jnp.asarray(FAKE, jnp.float32).reshape(shape)
  value, (gr, gf) = jax.value_and_grad(fn, argnums=(0, 1))(r, f)
  assert value.shape == () and value.dtype == jnp.float32
  np.testing.assert_allclose(value, ref_value, **TOL)
  np.testing.assert_allclose(gr.reshape(-1), ref_gr, **TOL)
  np.testing.assert_allclose(gf.reshape(-1), ref_gf, **TOL)


@pytest.mark.parametrize('name', sorted(losses.LOSSES))
def test_finite_at_extreme_logits(name):
  """Values and gradients stay finite at logits of +-1e4 in float32, in every sign pattern."""
  loss = losses.get(name)
  big = jnp.array([1e4, -1e4, 1e4, -1e4], jnp.float32)
  for fn in (loss.d_loss, _g(loss)):
    value_and_grad = jax.jit(jax.value_and_grad(fn, argnums=(0, 1)))
    for r, f in [
      (big, big),
      (big, -big),
      (-big, big),
      (jnp.full(4, 1e4), jnp.full(4, -1e4)),
    ]:
      value, grads = value_and_grad(r, f)
      assert np.isfinite(value)
      assert all(np.all(np.isfinite(g)) for g in grads)


@pytest.mark.parametrize('logit', [-10.0, -20.0, -1e4])
def test_minimax_saturates_non_saturating_does_not(logit):
  """Goodfellow et al. 2014, Sec. 3: as D(G(z)) -> 0 (logit -> -inf), per example
  d/dl log(1 - sigmoid(l)) = -sigmoid(l) -> 0, while d/dl -log sigmoid(l) = sigmoid(l) - 1 -> -1.
  Multiplying by B removes the 1/B of the batch mean."""
  f = jnp.full((B,), logit, jnp.float32)
  mm = B * jax.grad(losses.get('minimax').g_loss)(f)
  ns = B * jax.grad(losses.get('non_saturating').g_loss)(f)
  np.testing.assert_allclose(mm, -sig(logit) * np.ones(B), rtol=1e-5, atol=0)
  np.testing.assert_allclose(
    ns, (sig(logit) - 1) * np.ones(B), rtol=1e-5, atol=0
  )
  assert np.all(np.abs(mm) < 1e-4) and np.all(np.abs(ns + 1) < 1e-4)


def test_least_squares_alternative_coding():
  """Mao et al. 2017 a=-1, b=1, c=0: d = 1/2 E[(r-1)^2] + 1/2 E[(f+1)^2], g = 1/2 E[f^2]."""
  r, f = jnp.asarray(REAL, jnp.float32), jnp.asarray(FAKE, jnp.float32)
  d = losses.least_squares_d_loss(r, f, a=-1.0, b=1.0)
  g = losses.least_squares_g_loss(f, c=0.0)
  expected_d = 0.5 * ((REAL - 1) ** 2).mean() + 0.5 * ((FAKE + 1) ** 2).mean()
  np.testing.assert_allclose(d, expected_d, **TOL)
  np.testing.assert_allclose(g, 0.5 * (FAKE**2).mean(), **TOL)


def test_registry_flags():
  """Only RaSGAN's generator needs real logits; penalties and default lambdas as published."""
  for name, loss in losses.LOSSES.items():
    assert loss.g_needs_real == (name == 'relativistic_average')
    assert loss.penalty is None or loss.penalty in losses.PENALTIES
    assert (loss.penalty is None) == (loss.penalty_weight == 0)
  assert losses.get('wasserstein_gp').penalty == 'gradient_penalty'
  assert losses.get('dragan').penalty == 'dragan'
  assert losses.get('wasserstein_gp').penalty_weight == 10.0
  assert losses.get('dragan').penalty_weight == 10.0
  with pytest.raises(ValueError, match='real_logits'):
    losses.get('relativistic_average').g_loss(jnp.zeros(B))


def test_get_unknown_name_lists_valid_names():
  with pytest.raises(ValueError) as info:
    losses.get('nope')
  message = str(info.value)
  assert "'nope'" in message
  assert all(name in message for name in losses.LOSSES)


# --- regularisers ------------------------------------------------------------

SHAPE = (3, 4, 4, 1)


def _data(seed=0):
  rng = np.random.default_rng(seed)
  return (
    jnp.asarray(rng.normal(size=SHAPE), jnp.float32),
    jnp.asarray(rng.normal(size=SHAPE) + 2.0, jnp.float32),
  )


def _linear(w, b=0.3, keepdims=False):
  """D(x) = <w, x> + b per example, so grad_x D = w everywhere."""
  return lambda x: (
    jnp.sum(w * x, axis=(1, 2, 3), keepdims=keepdims).reshape(
      (-1, 1) if keepdims else (-1,)
    )
    + b
  )


@pytest.mark.parametrize('scale', [0.1, 0.25, 1.0])
@pytest.mark.parametrize('keepdims', [False, True])
def test_penalties_on_linear_critic(scale, keepdims):
  """grad_x D = w, so GP = lambda (||w|| - 1)^2 for any interpolation, DRAGAN =
  lambda (||w|| - 1)^2 for any perturbation, R1 = gamma/2 ||w||^2."""
  real, fake = _data()
  w_np = scale * np.random.default_rng(1).normal(size=SHAPE[1:])
  norm = np.linalg.norm(w_np)
  critic = _linear(jnp.asarray(w_np, jnp.float32), keepdims=keepdims)
  key = jax.random.key(0)
  gp = losses.gradient_penalty(critic, real, fake, key, 7.0)
  np.testing.assert_allclose(gp, 7.0 * (norm - 1) ** 2, **TOL)
  dragan = losses.dragan_penalty(critic, real, key, 5.0)
  np.testing.assert_allclose(dragan, 5.0 * (norm - 1) ** 2, **TOL)
  np.testing.assert_allclose(
    losses.r1_penalty(critic, real, 3.0), 1.5 * norm**2, **TOL
  )
  for (
    name
  ) in losses.PENALTIES:  # uniform signature, with the default lambda = 10
    penalty = losses.PENALTIES[name](critic, real, fake, key, 10.0)
    np.testing.assert_allclose(penalty, 10.0 * (norm - 1) ** 2, **TOL)


def test_penalty_parameter_gradients():
  """Double backprop through the penalty: for D = <w, x> + b, d/dw lambda (||w|| - 1)^2 =
  2 lambda (||w|| - 1) w / ||w||, and d/dw gamma/2 ||w||^2 = gamma w. At w = 0 (input
  gradient exactly 0) the sqrt(. + tiny) norm keeps the gradient finite."""
  real, fake = _data()
  key = jax.random.key(0)
  w_np = 0.2 * np.random.default_rng(2).normal(size=SHAPE[1:])
  norm = np.linalg.norm(w_np)
  gp = lambda w: losses.gradient_penalty(_linear(w), real, fake, key, 10.0)
  dragan = lambda w: losses.dragan_penalty(_linear(w), real, key, 10.0)
  r1 = lambda w: losses.r1_penalty(_linear(w), real, 10.0)
  w = jnp.asarray(w_np, jnp.float32)
  for fn in (gp, dragan):
    np.testing.assert_allclose(
      jax.grad(fn)(w), 20.0 * (norm - 1) * w_np / norm, **TOL
    )
    assert np.all(np.isfinite(jax.grad(fn)(jnp.zeros(SHAPE[1:]))))
  np.testing.assert_allclose(jax.grad(r1)(w), 10.0 * w_np, **TOL)


def test_gradient_penalty_quadratic_critic():
  """D(x) = sum x^2 has grad 2 x_hat, so GP = lambda E[(2 ||x_hat|| - 1)^2] with
  x_hat = eps real + (1 - eps) fake, eps ~ U[0,1] per example (drawn from the same key);
  with real == fake, x_hat = real whatever eps is."""
  real, fake = _data()
  critic = lambda x: jnp.sum(x**2, axis=(1, 2, 3))
  key = jax.random.key(42)
  r64, f64 = np.asarray(real, np.float64), np.asarray(fake, np.float64)

  def ref(x_hat):
    return 10.0 * np.mean(
      (2 * np.linalg.norm(x_hat.reshape(len(x_hat), -1), axis=1) - 1) ** 2
    )

  np.testing.assert_allclose(
    losses.gradient_penalty(critic, real, real, key), ref(r64), **TOL
  )
  eps = np.asarray(jax.random.uniform(key, (SHAPE[0], 1, 1, 1)), np.float64)
  gp = losses.gradient_penalty(critic, real, fake, key)
  np.testing.assert_allclose(gp, ref(eps * r64 + (1 - eps) * f64), **TOL)


def test_dragan_perturbation_quadratic_critic():
  """D(x) = sum x^2: DRAGAN = lambda E[(2 ||x_hat|| - 1)^2] with x_hat = x + c std(x) u,
  std over the whole batch, u ~ U[0,1] per element (drawn from the same key)."""
  real, _ = _data()
  critic = lambda x: jnp.sum(x**2, axis=(1, 2, 3))
  key = jax.random.key(7)
  r64 = np.asarray(real, np.float64)
  u = np.asarray(jax.random.uniform(key, SHAPE), np.float64)
  x_hat = r64 + 0.25 * r64.std() * u
  expected = 3.0 * np.mean(
    (2 * np.linalg.norm(x_hat.reshape(SHAPE[0], -1), axis=1) - 1) ** 2
  )
  penalty = losses.dragan_penalty(critic, real, key, 3.0, c=0.25)
  np.testing.assert_allclose(penalty, expected, **TOL)
