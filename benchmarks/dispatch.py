"""Toy-ring MLP GAN: steps/s with 1, 10 and 100 iterations per dispatch.

  python benchmarks/dispatch.py [--spd 1,10,100] [--steps 400] [--repeats 5]
  python -m benchmarks.dispatch ...

Builds the train function of experiments/toy_ring.py (default model sizes:
G 4 x 400, D 3 x 200, batch 128) as gan_jax/train.py does
(`ts.make_train_fn` on a one-axis `data` mesh of all devices, state and the
dataset replicated), once per `steps_per_dispatch` value, in one process.
Each timed run dispatches `--steps` iterations back to back (asynchronously,
as the training loop does) and blocks at the end; prints the median steps/s
over `--repeats` runs after a warm-up (min, max), and each value's ratio to
the first `--spd` value.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

from experiments import toy_ring  # noqa: E402
from gan_jax import data, models, train_step as ts  # noqa: E402


class Runner:
  """`steps` toy-ring iterations per call, `spd` per dispatch, warmed up."""

  def __init__(self, spd, steps):
    if steps % spd:
      raise ValueError(f'--steps={steps} is not a multiple of spd={spd}')
    config = toy_ring.get_config()
    config.steps_per_dispatch = spd
    mesh = jax.make_mesh(
      (jax.device_count(),),
      (ts.AXIS,),
      axis_types=(jax.sharding.AxisType.Auto,),
    )
    replicated = NamedSharding(mesh, P())
    dataset = data.DATASETS[config.data.name]
    self.source = jax.device_put(dataset.load(config.data), replicated)
    g, d = models.build(config.model, dataset.shape, axis_name=ts.AXIS)
    g_tx, d_tx = ts.make_optimizers(config.optim)
    init = jax.jit(
      lambda k: ts.init_state(
        g, d, g_tx, d_tx, config.model.z_dim, dataset.shape, k
      ),
      out_shardings=replicated,
    )
    self.state = init(jax.random.PRNGKey(config.seed))
    self.fn = ts.make_train_fn(mesh, config, g, d, g_tx, d_tx)
    self.dispatches = steps // spd
    self.batch = config.batch_size
    self()  # compile, warm up

  def __call__(self):
    t = time.perf_counter()
    for _ in range(self.dispatches):
      self.state, metrics = self.fn(self.state, self.source)
    jax.block_until_ready((self.state, metrics))
    return time.perf_counter() - t


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--spd', default='1,10,100')
  parser.add_argument('--steps', type=int, default=400)
  parser.add_argument('--repeats', type=int, default=5)
  args = parser.parse_args()
  spds = [int(s) for s in args.spd.split(',')]
  runners = {s: Runner(s, args.steps) for s in spds}
  print(
    f'toy ring MLP GAN, batch {runners[spds[0]].batch}, backend='
    f'{jax.default_backend()}, {jax.device_count()} device(s), '
    f'{os.cpu_count()} cores; {args.steps} iterations per timed run, '
    f'{args.repeats} runs, median (min, max) steps/s'
  )
  rates = {s: [] for s in spds}
  for _ in range(args.repeats):  # alternate, so all see the same load
    for s, run in runners.items():
      rates[s].append(args.steps / run())
  base = statistics.median(rates[spds[0]])
  for s, r in rates.items():
    m = statistics.median(r)
    print(
      f'steps_per_dispatch {s:4d}: {m:8.1f} steps/s (min {min(r):.1f}, '
      f'max {max(r):.1f})  {m / base:5.2f}x of spd={spds[0]}'
    )


if __name__ == '__main__':
  main()
