"""Mode collapse on the 2-D ring and grid, with and without packing (PacGAN).

  python launch.py --config=experiments/mode_collapse.py \\
      --workdir=runs/mode_collapse --sweep --launcher=vmap
  python -m gan_jax.report runs/mode_collapse
  python launch.py --config=experiments/mode_collapse.py:smoke \\
      --workdir=runs/mode_collapse_smoke --sweep
One point alone (no --sweep):
  python launch.py --config=experiments/mode_collapse.py:dataset=grid,pack=4 \\
      --workdir=runs/grid_pac4
Arguments: dataset=ring|grid, loss=<name in gan_jax.losses.LOSSES>,
pack=<samples per discriminator decision>, seed=<int>, smoke.

The protocol of PacGAN (Lin et al. 2018, "PacGAN: The power of two samples
in generative adversarial networks", Table 1), after VEEGAN
(Srivastava et al. 2017): the MLP pair of experiments/toy_ring.py on 8
Gaussians on a ring (std 0.01) and 25 on a grid (std 0.05); at the end,
2,500 generator samples give the modes captured (a mode is captured by
a high-quality sample, one within 3 std of it), the percentage of
high-quality samples and the reverse KL of the histogram over modes to the
uniform one (gan_jax.metrics.modes). The sweep crosses both datasets, the
objectives in LOSSES at m = 1 (no packing) and the paper's GAN (the
non-saturating one) packed as PacGAN2 and PacGAN4 (m in PACKS), with 10
seeds: 2 x (5 + 2) x 10 = 140 points.

Reference: Lin et al. 2018, Table 1, mean +- standard error over 10 trials
(the GAN row is the non-saturating GAN), in PAPER below:
                 2D-ring (8 modes)          2D-grid (25 modes)
             modes  high q.  rev. KL    modes  high q.  rev. KL
  GAN         6.3    98.2 %   0.45      17.3    94.8 %   0.70
  PacGAN2     7.9    95.6 %   0.07      23.8    91.3 %   0.13
  PacGAN4     7.8    95.9 %   0.07      24.8    93.6 %   0.04
The grid numbers are those of the paper's 2-D grid experiment (same table).

As in the paper's released code (synthetic_data_experiments/*_GAN&PacGAN/
config.py), a minibatch holds PACKS_PER_BATCH = 100 packs, so 100 m samples
(`batch_size` is zipped with `model.pack` in the sweep), D's hidden layers
keep their size for every m (only its input layer grows), and Adam has
lr 1e-4 and b1 0.8.
What differs, and why:
  - Budget: NUM_STEPS = 3,000 generator updates a point. Alone on 2 CPU
    cores (shared, load ~3) a point took 19 s for m = 1, 25 s for m = 2 and
    32-35 s for m = 4 (a batch of 400 samples), compilation and the final
    evaluation included; with --launcher=vmap (10 seeds a program) the 140
    points took 32 minutes. The
    paper's code trains 400 epochs of 100,000 samples, about 400,000
    updates: far longer, so expect fewer modes and fewer high-quality
    samples than its Table 1, and compare objectives and packings with
    each other across seeds rather than with the paper's values.
  - The architecture is experiments/toy_ring.py's (see there for how it
    follows the paper's App.), kept in that one file.
  - Evaluated once, at the end of training, not at the best step by some
    metric (no best checkpoint is kept).
Smoke: toy_ring's tiny smoke models, ring only, 2 objectives at m = 1 and
non-saturating at m = 2, 2 seeds, 200 steps: seconds a point.
"""

from gan_jax import config as config_lib
from gan_jax import hyper
from experiments import toy_ring

DATASETS = ('ring', 'grid')
LOSSES = (
  'non_saturating',
  'minimax',
  'least_squares',
  'hinge',
  'wasserstein_gp',
)
PACKS = (1, 2, 4)
NUM_SEEDS = 10
NUM_STEPS = 3000
PACKS_PER_BATCH = 100  # the paper's batch_size, in packs
SMOKE_PACKS_PER_BATCH = 32

# Lin et al. 2018, Table 1: (modes, high quality %, reverse KL), each as
# (mean, standard error over 10 trials), by dataset and packing m.
PAPER = {
  'ring': {
    1: ((6.3, 0.5), (98.2, 0.2), (0.45, 0.09)),
    2: ((7.9, 0.1), (95.6, 2.0), (0.07, 0.03)),
    4: ((7.8, 0.1), (95.9, 1.4), (0.07, 0.02)),
  },
  'grid': {
    1: ((17.3, 0.8), (94.8, 0.7), (0.70, 0.07)),
    2: ((23.8, 0.7), (91.3, 0.8), (0.13, 0.04)),
    4: ((24.8, 0.2), (93.6, 0.6), (0.04, 0.01)),
  },
}


def _parse(arg):
  return config_lib.parse_arg(
    arg, dataset='ring', loss='non_saturating', pack=1, seed=0, smoke=False
  )


def get_config(arg=None):
  arg = _parse(arg)
  smoke = ',smoke' if arg.smoke else ''
  c = toy_ring.get_config(f'loss={arg.loss},dataset={arg.dataset}{smoke}')
  c.seed = arg.seed
  c.model.pack = arg.pack
  packs = SMOKE_PACKS_PER_BATCH if arg.smoke else PACKS_PER_BATCH
  c.batch_size = packs * arg.pack
  c.optim.b1 = 0.8
  if not arg.smoke:
    c.num_steps = NUM_STEPS
  c.log_every = c.steps_per_dispatch
  c.sample_every = c.checkpoint_every = c.num_steps
  c.eval.every = 0  # at the end only
  c.eval.best_metric = ''
  return c


def get_hyper(arg=None):
  """Every objective at m = 1, and PacGAN2/PacGAN4 of the paper's GAN (the
  non-saturating one), on both datasets; seeds vary fastest."""
  if _parse(arg).smoke:
    return _sweep(
      ('ring',), ('non_saturating', 'hinge'), (2,), 2, SMOKE_PACKS_PER_BATCH
    )
  return _sweep(DATASETS, LOSSES, PACKS[1:], NUM_SEEDS, PACKS_PER_BATCH)


def _sweep(datasets, losses, packs, num_seeds, packs_per_batch):
  def points(losses, packs):
    return hyper.product(
      [
        hyper.sweep('loss', losses),
        hyper.zipit(
          [
            hyper.sweep('model.pack', packs),
            hyper.sweep('batch_size', [packs_per_batch * m for m in packs]),
          ]
        ),
      ]
    )

  return hyper.product(
    [
      hyper.sweep('data.name', datasets),
      points(losses, (1,)) + points(('non_saturating',), packs),
      hyper.sweep('seed', range(num_seeds)),
    ]
  )


def get_reference(arg=None):
  """PAPER beside our groups of the same dataset and packing (GAN = NS)."""
  del arg
  return {
    'source': 'Lin et al. 2018, Table 1 (mean ± s.e. over 10 trials; 400k '
    'updates there, 3k here)',
    'rows': [
      {
        'where': {'data.name': name, 'loss': 'non_saturating', 'model.pack': m},
        'metrics': dict(zip(('modes', 'high_quality', 'reverse_kl'), values)),
      }
      for name, by_pack in PAPER.items()
      for m, values in by_pack.items()
    ],
  }
