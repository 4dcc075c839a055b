"""UpConv/DownConv are the same maps as lax's stride-2 (transposed) convs.

For random x and kernel K: UpConv(x; K) == nn.ConvTranspose(x; K) and
DownConv(x; K) == nn.Conv(x; K) (stride 2, 'SAME'), and so are the gradients
of a random linear functional <y, c> with respect to x, K and the bias.
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


@pytest.mark.parametrize('ours, ref, shape, k', CASES)
def test_same_map_and_gradients(ours, ref, shape, k):
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
  y_ref = ref_mod.apply(params, x)
  c = jax.random.normal(kc, y_ref.shape)
  np.testing.assert_allclose(our_mod.apply(params, x), y_ref, atol=2e-5)

  def dot(mod):
    return jax.grad(lambda p, x: jnp.sum(mod.apply(p, x) * c), (0, 1))

  g_ours, g_ref = dot(our_mod)(params, x), dot(ref_mod)(params, x)
  for a, b in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_ref)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_odd_sizes_rejected():
  with pytest.raises(ValueError, match='even'):
    layers.UpConv(2, 3).init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 4, 1)))
  with pytest.raises(ValueError, match='even'):
    layers.DownConv(2, 4).init(jax.random.PRNGKey(0), jnp.zeros((1, 5, 4, 1)))
