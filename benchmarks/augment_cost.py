"""The cost of data-efficient training per step, as ratios to the plain step.

  python -m benchmarks.augment_cost [--steps 20] [--repeats 5]
Every variant is the DCGAN of experiments/data_efficient_mnist.py (G 64, D
32, batch 64) with one method on: each DiffAugment op alone and the full
policy, ADA (p = 0.5, fixed: the ops cost the same at any p, each is
computed and selected), LeCam, CR and bCR. The variants run in alternating
rounds of `steps` updates in one process on synthetic images (compiled
first); the ratio is each variant's median time over the plain step's. A
round is dropped when other processes used more than --max-background
cores meanwhile (benchmarks/load.py).
"""

import argparse
import statistics

import jax

from benchmarks import load
from gan_jax import config as config_lib
from gan_jax import data, models, train_state, train_step as ts
from experiments import data_efficient_mnist

VARIANTS = {
  'plain': {},
  'diffaugment color': {
    'augment.method': 'diffaugment',
    'augment.policy': 'color',
  },
  'diffaugment translation': {
    'augment.method': 'diffaugment',
    'augment.policy': 'translation',
  },
  'diffaugment cutout': {
    'augment.method': 'diffaugment',
    'augment.policy': 'cutout',
  },
  'diffaugment color,translation,cutout': {'augment.method': 'diffaugment'},
  'ada (10 ops, p = 0.5)': {
    'augment.method': 'ada',
    'augment.ada_p': 0.5,
    'augment.ada_target': 0.0,
  },
  'lecam': {'lecam.weight': 0.3},
  'cr': {'consistency.real': 10.0},
  'bcr': {'consistency.real': 10.0, 'consistency.fake': 10.0},
}


def runner(overrides: dict, steps: int):
  """() -> None running `steps` updates of the variant (compiled here)."""
  config = data_efficient_mnist.get_config()
  for field, value in overrides.items():
    config_lib.set_field(config, field, value)
  config.steps_per_dispatch = steps
  shape = (28, 28, 1)
  mesh = jax.make_mesh(
    (jax.device_count(),), (ts.AXIS,), axis_types=(jax.sharding.AxisType.Auto,)
  )
  g, d = models.build(config.model, shape, axis_name=ts.AXIS)
  gan = train_state.GAN(g, d, *train_state.make_optimizers(config.optim))
  state = [
    train_state.init_state(
      gan,
      config.model.z_dim,
      shape,
      jax.random.PRNGKey(0),
      adaptive=train_state.initial_adaptive(config),
    )
  ]
  images = jax.tree.map(jax.numpy.asarray, data.random_images(600, shape))
  fn = ts.make_train_fn(mesh, config, gan)
  state[0] = jax.block_until_ready(fn(state[0], images))[0]  # compile

  def run():
    state[0] = jax.block_until_ready(fn(state[0], images))[0]

  return run


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--steps', type=int, default=20)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--max-background', type=float, default=0.5)
  args = parser.parse_args()
  print(
    f'backend={jax.default_backend()} devices={jax.device_count()} '
    f'steps={args.steps} repeats={args.repeats}'
  )
  runners = {k: runner(v, args.steps) for k, v in VARIANTS.items()}
  times, loads, dropped = load.measure(
    runners, args.repeats, args.max_background
  )
  plain = statistics.median(times['plain'])
  for name, t in times.items():
    m = statistics.median(t)
    print(
      f'{name:38s} {args.steps / m:7.1f} steps/s  {m / plain:5.2f}x the plain '
      f'step (median of {len(t)})'
    )
  if loads:
    print(
      f'other processes: {statistics.mean(loads):.2f} cores on average; '
      f'{dropped} rounds dropped'
    )


if __name__ == '__main__':
  main()
