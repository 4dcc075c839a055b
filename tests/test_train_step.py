"""The data-parallel step computes the global-batch update.

With the same global batch and key, 3 iterations on a 1-device mesh and on a
4-device mesh give the same parameters, BatchNorm statistics and optimizer
state: the 4-device step averages gradients (lax.pmean) and BatchNorm
statistics (axis_name) over `data`, so only the float32 summation order
differs. Plain SGD is used: Adam's update is invariant to the gradient's
scale and would hide a wrong average, and it turns float noise in near-zero
gradients into lr-sized steps. Tolerance: 1e-5 absolute and relative.
"""

import jax
import optax
import numpy as np
import pytest

from gan_jax import models, train_step as ts
from experiments import mnist_dcgan


def _run(n_devices, config, images):
  mesh = jax.make_mesh(
    (n_devices,),
    (ts.AXIS,),
    axis_types=(jax.sharding.AxisType.Auto,),
    devices=jax.devices()[:n_devices],
  )
  g, d = models.build(config.model, images.shape[1:], axis_name=ts.AXIS)
  g_tx = d_tx = optax.sgd(0.1)
  state = ts.init_state(
    g,
    d,
    g_tx,
    d_tx,
    config.model.z_dim,
    images.shape[1:],
    jax.random.PRNGKey(0),
  )
  state, metrics = ts.make_train_fn(mesh, config, g, d, g_tx, d_tx)(
    state, images
  )
  return jax.device_get(state), jax.device_get(metrics)


@pytest.mark.parametrize('model, d_steps', [('dcgan', 1), ('mlp', 2)])
def test_one_and_four_devices_agree(model, d_steps):
  assert jax.device_count() >= 4
  config = mnist_dcgan.get_config('smoke')
  config.model.name = model
  if model == 'mlp':
    config.model.g = {'hidden': (32,)}
    config.model.d = {'hidden': (32,)}
  config.d_steps = d_steps
  config.steps_per_dispatch = 3
  images = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), np.uint8)
  state1, metrics1 = _run(1, config, images)
  state4, metrics4 = _run(4, config, images)
  assert int(state1.step) == int(state4.step) == 3
  for a, b in zip(jax.tree.leaves(state1), jax.tree.leaves(state4)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  for k in metrics1:
    np.testing.assert_allclose(metrics1[k], metrics4[k], rtol=1e-5, atol=1e-5)
  # The step moved the parameters: the comparison is not of two inits.
  init = jax.tree.leaves(
    ts.init_state(
      *models.build(config.model, (28, 28, 1)),
      optax.sgd(0.1),
      optax.sgd(0.1),
      config.model.z_dim,
      (28, 28, 1),
      jax.random.PRNGKey(0),
    ).g_params
  )
  assert any(
    np.abs(a - b).max() > 1e-4
    for a, b in zip(init, jax.tree.leaves(state4.g_params))
  )
