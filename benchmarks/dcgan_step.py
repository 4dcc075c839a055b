"""MNIST DCGAN train-step throughput: GEMM-form vs XLA (transposed) convs.

  python -m benchmarks.dcgan_step [--batch 128] [--steps 20]
Both variants run 3 dispatches of `steps` full GAN iterations (D step on real+fake, G step, Adam)
in the same process on synthetic data; prints images/s and their ratio.
"""

import argparse
import time

import jax

from gan_jax import data, models, train_state, train_step as ts
from experiments import mnist_dcgan


def images_per_sec(conv: str, batch: int, steps: int) -> float:
  config = mnist_dcgan.get_config('recipe=radford')
  config.batch_size, config.steps_per_dispatch = batch, steps
  config.model.g.conv = config.model.d.conv = conv
  mesh = jax.make_mesh(
    (jax.device_count(),), (ts.AXIS,), axis_types=(jax.sharding.AxisType.Auto,)
  )
  g, d = models.build(config.model, (28, 28, 1), axis_name=ts.AXIS)
  g_tx, d_tx = train_state.make_optimizers(config.optim)
  state = train_state.init_state(
    train_state.GAN(g, d, g_tx, d_tx), 100, (28, 28, 1), jax.random.PRNGKey(0)
  )
  images = jax.tree.map(
    jax.numpy.asarray, data.random_images(1024, (28, 28, 1))
  )
  fn = ts.make_train_fn(mesh, config, train_state.GAN(g, d, g_tx, d_tx))
  state, _ = jax.block_until_ready(fn(state, images))  # compile, warm up
  t = time.perf_counter()
  for _ in range(3):
    state, _ = fn(state, images)
  jax.block_until_ready(state)
  return 3 * steps * batch / (time.perf_counter() - t)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--batch', type=int, default=128)
  parser.add_argument('--steps', type=int, default=20)
  args = parser.parse_args()
  print(
    f'backend={jax.default_backend()} devices={jax.device_count()} '
    f'batch={args.batch} steps={args.steps}'
  )
  rates = {
    c: images_per_sec(c, args.batch, args.steps) for c in ('gemm', 'xla')
  }
  for c, r in rates.items():
    print(f'{c:5s} {r:8.1f} images/s')
  print(f'gemm/xla speed ratio: {rates["gemm"] / rates["xla"]:.2f}x')


if __name__ == '__main__':
  main()
