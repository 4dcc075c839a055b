"""Toy-ring MLP GAN: steps/s with 1, 10 and 100 iterations per dispatch.

  python benchmarks/dispatch.py [--spd 1,10,100] [--steps 400] [--repeats 5]
      [--max-background 0.25] [--smoke]
  python -m benchmarks.dispatch ...

Builds the train function of experiments/toy_ring.py (default model sizes:
G 4 x 400, D 3 x 200, batch 128; `--smoke`: the smoke config's 32 x 32 MLPs
at the same batch) as gan_jax/train.py does (`ts.make_train_fn` on a one-axis
`data` mesh of all devices, state and dataset replicated), once per
`steps_per_dispatch` value, in one process. Each timed run dispatches
`--steps` iterations back to back (asynchronously, as the training loop does)
and blocks at the end. Runs of the values alternate; a round in which other
processes used more than `--max-background` cores (from /proc/stat) is
dropped and redone, up to 3 x `--repeats` rounds. Prints, per value, the
median steps/s over `--repeats` rounds after a warm-up (min, max) and its
ratio to the first value; then the FLOPs of one iteration (XLA cost
analysis), the FLOP/s at the fastest value, and the time per dispatch that
the first value spends beyond it.
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

from experiments import toy_ring  # noqa: E402
from benchmarks.load import measure  # noqa: E402
from gan_jax import data, models, train_state, train_step as ts  # noqa: E402


class Runner:
  """`steps` toy-ring iterations per call, `spd` per dispatch, warmed up."""

  def __init__(self, spd, steps, smoke=False):
    if steps % spd:
      raise ValueError(f'--steps={steps} is not a multiple of spd={spd}')
    config = toy_ring.get_config()
    if smoke:  # the smoke run's small MLPs, at the same batch size
      config.model = toy_ring.get_config('smoke').model
    config.steps_per_dispatch = spd
    self.config = config
    mesh = jax.make_mesh(
      (jax.device_count(),),
      (ts.AXIS,),
      axis_types=(jax.sharding.AxisType.Auto,),
    )
    replicated = NamedSharding(mesh, P())
    dataset = data.DATASETS[config.data.name]
    self.source = jax.device_put(dataset.load(config.data), replicated)
    g, d = models.build(config.model, dataset.shape, axis_name=ts.AXIS)
    g_tx, d_tx = train_state.make_optimizers(config.optim)
    init = jax.jit(
      lambda k: train_state.init_state(
        train_state.GAN(g, d, g_tx, d_tx), config.model.z_dim, dataset.shape, k
      ),
      out_shardings=replicated,
    )
    self.state = init(jax.random.PRNGKey(config.seed))
    self.fn = ts.make_train_fn(mesh, config, train_state.GAN(g, d, g_tx, d_tx))
    self.dispatches = steps // spd
    for _ in range(2):  # compile, warm up
      self()

  def __call__(self):
    for _ in range(self.dispatches):
      self.state, metrics = self.fn(self.state, self.source)
    jax.block_until_ready((self.state, metrics))

  def flops(self):
    """XLA's cost-analysis FLOPs of one dispatch (a scan body counts once)."""
    cost = self.fn.lower(self.state, self.source).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):  # older jax: one dict per executable
      cost = cost[0]
    return float(cost['flops'])


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--spd', default='1,10,100')
  parser.add_argument('--steps', type=int, default=400)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--max-background', type=float, default=0.25)
  parser.add_argument(
    '--smoke', action='store_true', help="the smoke config's small MLPs"
  )
  args = parser.parse_args()
  spds = [int(s) for s in args.spd.split(',')]
  runners = {s: Runner(s, args.steps, args.smoke) for s in spds}
  model = runners[spds[0]].config.model
  print(
    f'toy ring MLP GAN, G {tuple(model.g.hidden)} D {tuple(model.d.hidden)}, '
    f'batch {runners[spds[0]].config.batch_size}; jax {jax.__version__} '
    f'{jax.default_backend()}, {jax.device_count()} device(s), '
    f'{os.cpu_count()} cores'
  )
  print(
    f'steps/s: median (min, max) of {args.repeats} runs of {args.steps} '
    'iterations each, after a warm-up'
  )
  # Alternate the values, so that all see the same load.
  times, loads, dropped = measure(runners, args.repeats, args.max_background)
  if not loads:
    print(
      f'no round had background load under {args.max_background} cores; '
      'rerun on a quieter machine or raise --max-background'
    )
    return
  rates = {s: [args.steps / t for t in v] for s, v in times.items()}
  base = statistics.median(rates[spds[0]])
  for s, r in rates.items():
    m = statistics.median(r)
    print(
      f'steps_per_dispatch {s:4d}: {m:8.1f} steps/s (min {min(r):.1f}, '
      f'max {max(r):.1f})  {m / base:5.2f}x of spd={spds[0]}'
    )
  print(
    f'{len(loads)} rounds, background load {statistics.median(loads):.2f} '
    f'(max {max(loads):.2f}) cores, {dropped} rounds dropped '
    f'(> {args.max_background})'
  )
  best = max(spds, key=lambda s: statistics.median(rates[s]))
  flops = runners[best].flops()
  fast = statistics.median(rates[best])
  extra = (1 / base - 1 / fast) * spds[0] * 1e6
  print(
    f'{flops / 1e6:.1f} MFLOP per iteration (XLA cost analysis), '
    f'{flops * fast / 1e9:.1f} GFLOP/s at spd={best}; spd={spds[0]} spends '
    f'{extra:.0f} us more per dispatch'
  )


if __name__ == '__main__':
  main()
