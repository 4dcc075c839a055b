"""Which recipe trains the best MNIST DCGAN in about 15 minutes on 2 CPU cores?

  python launch.py --config=experiments/mnist_recipe.py \\
      --workdir=runs/mnist_recipe --sweep
  python launch.py --config=experiments/mnist_recipe.py:smoke \\
      --workdir=runs/mnist_recipe_smoke --sweep
  python -m gan_jax.report runs/mnist_recipe
  python -m experiments.mnist_recipe runs/mnist_recipe docs/results/mnist_recipe
The last writes FD and the classifier score against training minutes
(each point's updates over its measured steps/s: the quality a budget buys;
write_budget_figures); given several sweep directories before OUT (shares
of the seeds, below) it pools them, as `gan_jax.report --pool` does.
One point alone: --config=experiments/mnist_recipe.py:seed=1 without
--sweep; with --sweep, seed=S,seeds=N runs the levers at seeds S..S+N-1
(a sweep directory per share of seeds: `gan_jax.report --pool` pools
them). Where TFDS cannot download MNIST, add
--config.data.manual_dir=<folder of the four original .gz files>.
Arguments: seed=<int> (the first seed), seeds=<points per lever> (1), smoke.

One lever at a time from a base recipe (BASE: the DCGAN of
experiments/mnist_dcgan.py with G width 64, D width 64, batch 64, Adam
2e-4 with b1 0.5, the non-saturating loss, BatchNorm in D, an EMA of G's
weights with decay 0.999 from update 1,000 on), the levers researchers
know (LEVERS):
  EMA       none (Yazici et al. 2019 and Karras et al. 2018 sample from it);
  lr        4e-4 for both players;
  TTUR      G 1e-4, D 4e-4 (Heusel et al. 2017);
  batch     128;
  widths    G 128 (Radford et al.'s), or G and D 32;
  objective hinge (Miyato et al. 2018);
  SN        spectral normalisation in D in place of BatchNorm;
  R1        gamma 10 on real data (Mescheder et al. 2018), D without
            BatchNorm (R1 needs per-example gradients).
The number of updates within the budget is the third lever: every point is
evaluated every EVAL_EVERY updates (FD, KID, precision/recall,
density/coverage and the classifier score on 10,000 samples against the
test split, the LeNet features of the default evaluation), and the report's
curves against updates and the measured steps/s of each point give the
quality a budget buys.
Budget: NUM_STEPS updates a point, one seed a lever on 2 CPU cores (seeds=3
is the full protocol); the winner is then run at its own budget for 3
seeds (docs/results.md section 9).
Smoke: the mnist_dcgan smoke model, 20 updates, 200 samples, the 300-step
LeNet, the base and two levers; seconds a point.
"""

import os
import sys

from gan_jax import config as config_lib
from gan_jax import hyper
from gan_jax.report import figures, read
from experiments import mnist_dcgan

BASE = {
  'model.g.width': 64,
  'model.d.width': 64,
  'batch_size': 64,
  'ema_decay': 0.999,
  'ema_start': 1000,
}
LEVERS = [  # the base first: {'ema_decay': 0.999} is BASE's own value
  {'ema_decay': 0.999},
  {'ema_decay': 0.0},
  {'optim.lr': 4e-4},
  {'optim.g_lr': 1e-4, 'optim.d_lr': 4e-4},
  {'batch_size': 128},
  {'model.g.width': 128},
  {'model.g.width': 32, 'model.d.width': 32},
  {'loss': 'hinge'},
  {'model.d.norm': 'none', 'model.d.spectral_norm': True},
  {'model.d.norm': 'none', 'r1_gamma': 10.0},
]
NUM_STEPS = 2500
EVAL_EVERY = 500


def _arg(arg):
  return config_lib.parse_arg(arg, seed=0, seeds=1, smoke=False)


def get_config(arg=None):
  arg = _arg(arg)
  c = mnist_dcgan.get_config('recipe=radford' + (',smoke' if arg.smoke else ''))
  c.seed = arg.seed
  if arg.smoke:
    c.ema_decay = BASE['ema_decay']
    c.model.d.spectral_norm = False
    return c
  for field, value in BASE.items():
    config_lib.set_field(c, field, value)
  c.model.d.spectral_norm = False
  c.num_steps = NUM_STEPS
  c.log_every = 50
  c.sample_every = c.checkpoint_every = c.eval.every = EVAL_EVERY
  return c


def get_hyper(arg=None):
  """LEVERS x seeds seed, ..., seed + seeds - 1 (full: 10 x seeds points;
  smoke: 3 x 1)."""
  arg = _arg(arg)
  levers = LEVERS[:1] + LEVERS[7:9] if arg.smoke else LEVERS
  seeds = range(arg.seed, arg.seed + (1 if arg.smoke else arg.seeds))
  return hyper.product([levers, hyper.sweep('seed', seeds)])


def write_budget_figures(sweep_dirs: list[str], out: str) -> list[str]:
  """eval_fd_minutes.png and eval_is_minutes.png in `out`: each lever's
  curve against training minutes, the sweeps' seeds pooled; returns the
  paths written."""
  groups, _ = read.read_groups(sweep_dirs, pool=True)
  groups = figures.short_labels(groups)
  paths = [
    figures.plot_curves(
      groups,
      [('evals', m, m)],
      os.path.join(out, f'eval_{m}_minutes.png'),
      markers=True,
      minutes=True,
    )
    for m in ('fd', 'is')
  ]
  return [p for p in paths if p]


if __name__ == '__main__':
  os.makedirs(sys.argv[-1], exist_ok=True)
  print('\n'.join(write_budget_figures(sys.argv[1:-1], sys.argv[-1])))
