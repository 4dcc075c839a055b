"""The data-parallel step computes the global-batch update.

With the same global batch and key, 3 iterations on a 1-device mesh and on a
4-device mesh give the same parameters, BatchNorm statistics and optimizer
state: the 4-device step averages gradients (lax.pmean) and BatchNorm
statistics (axis_name) over `data`, so only the float32 summation order
differs; the same holds for class-conditional models, whose labels are
sharded with their examples. Plain SGD is used: Adam's update is invariant to the gradient's
scale and would hide a wrong average, and it turns float noise in near-zero
gradients into lr-sized steps. Tolerance: 1e-5 absolute and relative.
Also: compute_dtype='bfloat16' keeps a float32 state, matmul_precision
reaches every matrix product of the step, and a vmapped pair of DCGANs on 4
devices equals each model trained alone.
"""

import jax
import optax
import numpy as np
import pytest

from gan_jax import data, models, train_state, train_step as ts
from experiments import mnist_dcgan


def _mesh(n_devices):
  return jax.make_mesh(
    (n_devices,),
    (ts.AXIS,),
    axis_types=(jax.sharding.AxisType.Auto,),
    devices=jax.devices()[:n_devices],
  )


def _step_dots(config, source):
  """The dot_general lines of config's train step, lowered on one device."""
  shape = source['images'].shape[1:]
  g, d = models.build(config.model, shape, axis_name=ts.AXIS)
  gan = train_state.GAN(g, d, optax.sgd(0.1), optax.sgd(0.1))
  state = train_state.init_state(
    gan, config.model.z_dim, shape, jax.random.PRNGKey(0)
  )
  text = ts.make_train_fn(_mesh(1), config, gan).lower(state, source)
  return [line for line in text.as_text().splitlines() if 'dot_general' in line]


def _run(n_devices, config, source):
  mesh = _mesh(n_devices)
  shape = source['images'].shape[1:]
  g, d = models.build(config.model, shape, axis_name=ts.AXIS)
  g_tx = d_tx = optax.sgd(0.1)
  state = train_state.init_state(
    train_state.GAN(g, d, g_tx, d_tx),
    config.model.z_dim,
    shape,
    jax.random.PRNGKey(0),
  )
  state, metrics = ts.make_train_fn(
    mesh, config, train_state.GAN(g, d, g_tx, d_tx)
  )(state, source)
  return jax.device_get(state), jax.device_get(metrics)


@pytest.mark.parametrize(
  'model, d_steps, cond, scheme',
  [
    ('dcgan', 1, None, 'alternating'),
    ('mlp', 2, None, 'alternating'),
    # class-conditional BN, projection D
    ('dcgan', 1, ('bn', 'projection'), 'alternating'),
    # label with z, auxiliary classifier
    ('mlp', 1, ('concat', 'acgan'), 'alternating'),
    # second derivatives through pmean'd losses and BatchNorm statistics
    ('dcgan', 1, None, 'consensus'),
    ('mlp', 1, None, 'unrolled'),
  ],
)
def test_one_and_four_devices_agree(model, d_steps, cond, scheme):
  """Unconditional and class-conditional steps, and the schemes that
  differentiate gradients: 1 and 4 devices agree."""
  assert jax.device_count() >= 4
  config = mnist_dcgan.get_config('smoke')
  config.update_scheme, config.unroll_steps = scheme, 2
  config.consensus_gamma = 0.1  # 10 moves SGD(0.1)'s DCGAN by ~16 a step
  config.model.name = model
  if model == 'mlp':
    config.model.g = {'hidden': (32,)}
    config.model.d = {'hidden': (32,)}
  if cond:
    config.model.num_classes = 10
    config.model.g.cond, config.model.d.cond = cond
  config.d_steps = d_steps
  config.steps_per_dispatch = 3
  source = data.random_images(64, (28, 28, 1))
  state1, metrics1 = _run(1, config, source)
  state4, metrics4 = _run(4, config, source)
  assert int(state1.step) == int(state4.step) == 3
  for a, b in zip(jax.tree.leaves(state1), jax.tree.leaves(state4)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  # Metrics are reductions whose order the device count changes: the
  # conditional DCGAN's g_grad_norm (through 4-example BatchNorm shards)
  # differs by 1-2e-5 relative between 1 and 4 devices.
  for k in metrics1:
    np.testing.assert_allclose(metrics1[k], metrics4[k], rtol=1e-4, atol=1e-5)
  # The step moved the parameters: the comparison is not of two inits.
  init = jax.tree.leaves(
    train_state.init_state(
      train_state.GAN(
        *models.build(config.model, (28, 28, 1)), optax.sgd(0.1), optax.sgd(0.1)
      ),
      config.model.z_dim,
      (28, 28, 1),
      jax.random.PRNGKey(0),
    ).g_params
  )
  assert any(
    np.abs(a - b).max() > 1e-4
    for a, b in zip(init, jax.tree.leaves(state4.g_params))
  )


def test_bfloat16_compute_keeps_float32_state():
  """compute_dtype='bfloat16' runs the matrix products in bfloat16 and keeps
  every state leaf's dtype. The first step's losses, from the same
  parameters, agree with float32 to bfloat16 rounding (2%); the parameters
  after 3 steps differ (the SGD steps of this tiny model are chaotic, so
  only the first step is compared)."""
  config = mnist_dcgan.get_config('smoke')
  config.steps_per_dispatch = 3
  source = data.random_images(64, (28, 28, 1))
  state32, metrics32 = _run(1, config, source)
  config.compute_dtype = 'bfloat16'
  state16, metrics16 = _run(1, config, source)

  def dtypes(state):
    return jax.tree.map(lambda a: a.dtype, state)

  assert dtypes(state16) == dtypes(state32)
  for k in ('d_loss', 'g_loss', 'd_real', 'd_fake'):
    np.testing.assert_allclose(metrics16[k][0], metrics32[k][0], rtol=0.02)
  g16, g32 = (
    jax.tree.leaves(state16.g_params),
    jax.tree.leaves(state32.g_params),
  )
  assert max(np.max(np.abs(a - b)) for a, b in zip(g16, g32)) > 0

  dots = _step_dots(config, source)
  assert dots and all('bf16' in line for line in dots), dots[:3]


@pytest.mark.parametrize('precision', ['default', 'float32'])
def test_matmul_precision_reaches_every_product(precision):
  """matmul_precision='float32' lowers every dot of the step (G, D, their
  VJPs) with Precision.HIGHEST, the backend's default none of them."""
  config = mnist_dcgan.get_config('smoke')
  config.matmul_precision = precision
  dots = _step_dots(config, data.random_images(64, (28, 28, 1)))
  highest = ['HIGHEST, HIGHEST' in line for line in dots]
  assert dots and all(highest) == (precision == 'float32'), dots[:3]
  assert any(highest) == (precision == 'float32')


def test_vmapped_dcgan_on_four_devices_equals_each_model_alone():
  """The DCGAN's hand-written layer VJPs under vmap (num_models=2) inside a
  4-device shard_map: model 1 of the pair equals model 1 trained alone."""
  config = mnist_dcgan.get_config('smoke')
  config.steps_per_dispatch = 2
  mesh = _mesh(4)
  shape = (28, 28, 1)
  g, d = models.build(config.model, shape, axis_name=ts.AXIS)
  g_tx, d_tx = train_state.make_optimizers(config.optim)
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  init = jax.jit(
    lambda k: train_state.init_state(
      train_state.GAN(g, d, g_tx, d_tx), config.model.z_dim, shape, k
    ),
    out_shardings=replicated,
  )
  source = jax.device_put(data.random_images(64, shape), replicated)
  keys = jax.random.split(jax.random.PRNGKey(0), 2)
  pair = ts.make_train_fn(
    mesh, config, train_state.GAN(g, d, g_tx, d_tx), num_models=2
  )
  stacked, metrics = jax.device_get(pair(jax.vmap(init)(keys), source))
  alone = ts.make_train_fn(mesh, config, train_state.GAN(g, d, g_tx, d_tx))
  state1, metrics1 = jax.device_get(alone(init(keys[1]), source))
  # Adam moves a weight whose gradient is near its eps (1e-8) by a share
  # of lr that float rounding changes; the losses and gradient norms below
  # are the tight check of the gradients.
  atol = config.optim.lr / 4
  for a, b in zip(jax.tree.leaves(stacked), jax.tree.leaves(state1)):
    np.testing.assert_allclose(a[1], b, rtol=1e-5, atol=atol)
  for k in metrics1:
    np.testing.assert_allclose(metrics[k][1], metrics1[k], rtol=1e-5)
  g0, g1 = stacked.g_params, state1.g_params
  assert any(  # the models differ: the comparison is not trivial
    np.max(np.abs(a[0] - b)) > 1e-3
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1))
  )
