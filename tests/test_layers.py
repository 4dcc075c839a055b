"""UpConv/DownConv are the same maps as lax's stride-2 (transposed) convs.

For random x and kernel K: UpConv(x; K) == nn.ConvTranspose(x; K) and
DownConv(x; K) == nn.Conv(x; K) (stride 2, 'SAME'), and so are the gradients
of a random linear functional <y, c> with respect to x, K and the bias, and
the gradients of a gradient penalty ||d<y, c>/dx||^2 (the layers' VJPs are
written by hand, so differentiating them again is tested too). Under
shard_map, their kernel gradients are summed over devices like any other.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import layers

CASES = [
  (layers.UpConv, nn.ConvTranspose, (3, 7, 7, 5), 4),
  (layers.UpConv, nn.ConvTranspose, (2, 5, 6, 3), 4),
  (layers.UpConv, nn.ConvTranspose, (2, 4, 4, 3), 2),
  (layers.UpConv, nn.ConvTranspose, (2, 4, 3, 3), 6),
  (layers.DownConv, nn.Conv, (3, 14, 14, 5), 4),
  (layers.DownConv, nn.Conv, (2, 8, 6, 3), 2),
  (layers.DownConv, nn.Conv, (2, 8, 8, 3), 6),
]


def _setup(ours, ref, shape, k):
  """(our module, lax's, params, x, c) with c a random output cotangent."""
  kx, kp, kc = jax.random.split(jax.random.PRNGKey(0), 3)
  x = jax.random.normal(kx, shape)
  ref_mod = ref(4, (k, k), (2, 2), 'SAME')
  our_mod = ours(4, k)
  params = ref_mod.init(kp, x)
  params = jax.tree.map(  # a non-zero bias, so its gradient path is tested
    lambda p: p + 0.1 * jax.random.normal(kc, p.shape), params
  )
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(
    jnp.shape, our_mod.init(kp, x)
  )
  c = jax.random.normal(kc, ref_mod.apply(params, x).shape)
  return our_mod, ref_mod, params, x, c


def _assert_trees_close(a, b):
  for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('ours, ref, shape, k', CASES)
def test_same_map_and_gradients(ours, ref, shape, k):
  our_mod, ref_mod, params, x, c = _setup(ours, ref, shape, k)
  np.testing.assert_allclose(
    our_mod.apply(params, x), ref_mod.apply(params, x), atol=2e-5
  )

  def dot(mod):
    return jax.grad(lambda p, x: jnp.sum(mod.apply(p, x) * c), (0, 1))

  _assert_trees_close(dot(our_mod)(params, x), dot(ref_mod)(params, x))


@pytest.mark.parametrize('ours, ref, shape, k', [CASES[0], CASES[4]])
def test_gradient_penalty_gradients(ours, ref, shape, k):
  our_mod, ref_mod, params, x, c = _setup(ours, ref, shape, k)

  def penalty_grad(mod):
    def penalty(p, x):
      dx = jax.grad(lambda x: jnp.sum(mod.apply(p, x) * c))(x)
      return jnp.sum(jnp.sin(x) * dx**2)  # x-dependent: tests d/dx too

    return jax.grad(penalty, (0, 1))

  _assert_trees_close(
    penalty_grad(our_mod)(params, x), penalty_grad(ref_mod)(params, x)
  )


@pytest.mark.parametrize('ours, ref, shape, k', [CASES[0], CASES[4]])
def test_kernel_gradient_sums_over_devices(ours, ref, shape, k):
  """Inside shard_map over a 2-way split batch, the kernel gradient of the
  mean loss equals the one-device gradient of the whole batch."""
  our_mod, _, params, x, c = _setup(ours, ref, (4, *shape[1:]), k)
  c = jax.random.normal(jax.random.PRNGKey(3), (4, *c.shape[1:]))
  mesh = jax.make_mesh(  # conftest.py gives 4 CPU devices
    (2,),
    ('data',),
    axis_types=(jax.sharding.AxisType.Auto,),
    devices=jax.devices()[:2],
  )

  def loss(p, x, c):
    return jnp.sum(our_mod.apply(p, x) * c)

  def sharded(p, x, c):
    return jax.grad(lambda p: jax.lax.psum(loss(p, x, c), 'data'))(p)

  spec = jax.sharding.PartitionSpec('data')
  got = jax.shard_map(
    sharded,
    mesh=mesh,
    in_specs=(jax.sharding.PartitionSpec(), spec, spec),
    out_specs=jax.sharding.PartitionSpec(),
  )(params, x, c)
  _assert_trees_close(got, jax.grad(loss)(params, x, c))


def test_odd_sizes_rejected():
  with pytest.raises(ValueError, match='even'):
    layers.UpConv(2, 3).init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)))
  with pytest.raises(ValueError, match='even'):
    layers.DownConv(2, 4).init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 4, 1)))
