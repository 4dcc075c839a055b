"""K models in one vmapped program against the same K trained one by one.

  python -m benchmarks.vmap_models [--k 8] [--dispatches 3]
For the toy-ring MLP pair (experiments/toy_ring.py; PacGAN size and a
2 x 64 one) and the MNIST DCGAN
(experiments/mnist_dcgan.py), prints model-steps/s of K models trained
sequentially (one compiled update, K states in turn) and vmapped (one
update over stacked states, train_step.make_train_fn(num_models=K)), and
their ratio, measured in the same run on synthetic data.
"""

import argparse
import time

import jax
from jax.sharding import NamedSharding, PartitionSpec as P

from experiments import mnist_dcgan, toy_ring
from gan_jax import data, train_state, train_step as ts


def _setup(config):
  mesh = jax.make_mesh(
    (jax.device_count(),),
    (ts.AXIS,),
    axis_types=(jax.sharding.AxisType.Auto,),
  )
  dataset = data.DATASETS[config.data.name]
  gan = train_state.build(config, dataset.shape, axis_name=ts.AXIS)
  # Inputs carry the sharding the train function returns (replicated on the
  # mesh), as in gan_jax/train.py; otherwise the second call recompiles.
  replicated = NamedSharding(mesh, P())
  init = jax.jit(
    lambda k: train_state.init_state(gan, config.model.z_dim, dataset.shape, k),
    out_shardings=replicated,
  )
  if dataset.kind == 'points':
    source = dataset.load(config.data)
  else:
    source = data.random_images(1024, dataset.shape)
  source = jax.device_put(source, replicated)
  return mesh, gan, init, source


def _rate(fn, states, source, dispatches, steps):
  """Model-steps/s of `fn` over `states` (a list: run in turn)."""
  for _ in range(2):  # compile, warm up
    states = [fn(s, source)[0] for s in states]
  jax.block_until_ready(states)
  t = time.perf_counter()
  for _ in range(dispatches):
    states = [fn(s, source)[0] for s in states]
  jax.block_until_ready(states)
  return dispatches * steps / (time.perf_counter() - t)


def vmapped_rate(config, k, dispatches, setup=None):
  """Model-steps/s of k models of `config` in one vmapped program."""
  mesh, gan, init, source = setup or _setup(config)
  keys = jax.random.split(jax.random.PRNGKey(0), k)
  vmapped = ts.make_train_fn(mesh, config, gan, num_models=k)
  stacked = jax.vmap(init)(keys)
  steps = config.steps_per_dispatch
  return _rate(vmapped, [stacked], source, dispatches, steps) * k


def measure(name, config, k, dispatches):
  """Prints and returns (sequential, vmapped) model-steps/s of k models."""
  setup = _setup(config)
  mesh, gan, init, source = setup
  steps = config.steps_per_dispatch
  keys = jax.random.split(jax.random.PRNGKey(0), k)
  solo = ts.make_train_fn(mesh, config, gan)
  seq = _rate(solo, [init(key) for key in keys], source, dispatches, steps) * k
  vm = vmapped_rate(config, k, dispatches, setup)
  print(
    f'{name}: {k} sequential {seq:.0f} model-steps/s, {k} vmapped '
    f'{vm:.0f} model-steps/s, ratio {vm / seq:.2f}x',
    flush=True,
  )
  return seq, vm


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--k', type=int, default=8)
  parser.add_argument('--dispatches', type=int, default=3)
  args = parser.parse_args()
  print(f'backend={jax.default_backend()} devices={jax.device_count()}')
  ring = toy_ring.get_config()  # PacGAN MLPs, batch 128, 100 steps/dispatch
  measure('toy-ring MLP pair (PacGAN size)', ring, args.k, args.dispatches)
  ring.model.g.hidden = ring.model.d.hidden = (64, 64)
  ring.batch_size = 64
  measure('toy-ring MLP pair (2 x 64, batch 64)', ring, args.k, args.dispatches)
  dcgan = mnist_dcgan.get_config(
    'recipe=radford'
  )  # batch 128, 10 steps/dispatch
  measure('MNIST DCGAN', dcgan, args.k, args.dispatches)


if __name__ == '__main__':
  main()
