"""Mode collapse on the 2-D ring and grid, with and without packing (PacGAN).

  python launch.py --config=experiments/mode_collapse.py \\
      --workdir=runs/mode_collapse --sweep --launcher=vmap     # the paper's
  python launch.py --config=experiments/mode_collapse.py:cpu \\
      --workdir=runs/mode_collapse_cpu --sweep --launcher=vmap # CPU budget
  python -m gan_jax.report runs/mode_collapse
One point alone (no --sweep):
  python launch.py --config=experiments/mode_collapse.py:dataset=grid,pack=4 \\
      --workdir=runs/grid_pac4
Arguments: dataset=ring|grid, loss=<name in gan_jax.losses.LOSSES>,
pack=<samples per discriminator decision>, seed=<int>, cpu (the sweep sized
for 2 CPU cores), objectives (also the other objectives at m = 1), smoke.

Reference: Lin et al. 2018, "PacGAN: The power of two samples in generative
adversarial networks", Table 1 (after VEEGAN, Srivastava et al. 2017):
8 Gaussians on a ring (std 0.01) and 25 on a grid (std 0.05); 2,500
generator samples give the modes captured (a mode is captured by a
high-quality sample, one within 3 std of it), the percentage of
high-quality samples and the reverse KL of the histogram over modes to the
uniform one (gan_jax.metrics.modes). Mean +- standard error over 10 trials
(PAPER below; the GAN row is the non-saturating GAN):
                 2D-ring (8 modes)          2D-grid (25 modes)
             modes  high q.  rev. KL    modes  high q.  rev. KL
  GAN         6.3    98.2 %   0.45      17.3    94.8 %   0.70
  PacGAN2     7.9    95.6 %   0.07      23.8    91.3 %   0.13
  PacGAN4     7.8    95.9 %   0.07      24.8    93.6 %   0.04

The protocol, read from the released code (github.com/fjxmlzn/PacGAN,
synthetic_data_experiments/2DRing_GAN&PacGAN/config.py and 2DGrid_...,
pacgan_task.py; the ALI training algorithm it calls), beside ours:
  setting          released code                       here
  training set     100,000 points drawn once           data.num_train=100000
                                                       (from data.subset_seed)
  z                2-d N(0, I) (one Gaussian mode,     the same
                   r 0, std 1), one z per packed sample
  G                4 x [Linear 400 without bias,       model.g.norm=batch
                   BatchNorm (eps 1e-4), ReLU] ->      (bn_epsilon=1e-4)
                   Linear 2, called once per pack      model.g_bn_per_slot
                   slot: each slot's 100 samples
                   normalised on their own
  D                3 x maxout (200 units x 5 pieces)   model.d.pieces=5
                   -> Linear 1; input 2m for packing m (models.Packed)
  init             weights N(0, 0.02), biases 0        weight_init=normal:0.02
  dropout          none (with_dropout=False)           none
  loss             non-saturating                      the same
  updates          both players from one minibatch     update_scheme=simultaneous
                   (ali_algorithm)
  optimiser        Adam lr 1e-4, beta1 0.8             optim lr 1e-4, b1 0.8
  batch            100 packs (100 m samples)           batch_size = 100 m
  budget           400 epochs of 1,000 batches         NUM_STEPS = 400,000
  evaluation       2,500 samples after every epoch     eval.every = 1,000
  arithmetic       float32 (TensorFlow on 2018 GPUs)   matmul_precision=float32
                                                       (not TensorFloat-32)
  seeds, packing   10 trials, m = 1, 2, 3, 4           the same (full sweep)
What differs, and why:
  - G's BatchNorm when the 2,500 samples are drawn: Blocks samples in
    inference mode right after its 'train' monitor has run 50 batches of
    100 through G with the population updates on (momentum 0.05, so
    0.95^50 = 8 % of the older statistics remain): statistics of the
    current weights. Ours: standing_stats, the batch statistics of the
    evaluated weights on 1,000 fixed draws (the running averages, momentum
    0.1 over training, lag a G still moving: on the 48k-50k-update PacGAN2
    ring checkpoints they score -15 to +3 points of high quality against
    standing statistics, -3.7 on average; docs/results.md section 4).
  - BatchNorm's running statistics: both average the m slots' batch
    statistics; they move by 5 % an update there, 10 % here (BN_MOMENTUM),
    and neither reaches the evaluation (standing statistics above).
  - beta1 0.8 is taken in the usual convention (the first-moment decay).
    Early Blocks releases used the complement (beta1 = 1 - decay, default
    0.1); the Blocks of PacGAN's time uses the usual one (default 0.9).
  - Training batches: the released set is 100,000 packs fixed once, each
    slot's point resampled with replacement from the 100,000 points
    (pacgan/datasets.py GaussianPackingMixture), iterated in shuffled
    epochs (pacgan/streams.py, fuel's ShuffledScheme); ours draws each
    batch's 100 m points with replacement from the 100,000 points, so its
    packs are formed afresh every batch. A pack is m independent points of
    the set either way; the fixed pairings are not reproduced.
  - The samples scored: the released code draws one z of 2,500 (Theano's
    MRG_RandomStreams(2333), pacgan/extensions.py GraphLogger) for every
    epoch, trial and m; ours is fixed per run, from its seed: the same law,
    only the spread over trials arises differently.
  - Reverse KL: the released MetricLogger logs the 'entropy of coverage'
    of the high-quality samples' histogram over modes (natural log); Table
    1's column, computed outside the released code, reads as log K minus
    it, KL(p_model || uniform), which gan_jax.metrics.modes computes. With
    no high-quality sample ours is log K where theirs is NaN.
  - Budget on CPU (the `cpu` sweep): GAN and PacGAN2 on both datasets, 3
    seeds, CPU_STEPS updates each, evaluated every 1,000; the full sweep
    is the one command above, for an accelerator.
Smoke: tiny models, ring only, GAN and PacGAN2, 2 seeds, 200 steps: seconds
a point.
"""

from gan_jax import config as config_lib
from gan_jax import hyper
from experiments import toy_ring

DATASETS = ('ring', 'grid')
LOSSES = (  # the objectives compared at m = 1 with the `objectives` argument
  'non_saturating',
  'minimax',
  'least_squares',
  'hinge',
  'wasserstein_gp',
)
PACKS = (1, 2, 3, 4)
NUM_SEEDS = 10
EPOCH = 1000  # updates: 100,000 points in batches of 100 packs
NUM_STEPS = 400 * EPOCH
CPU_PACKS, CPU_SEEDS, CPU_STEPS = (1, 2), 3, 10 * EPOCH
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
    arg,
    dataset='ring',
    loss='non_saturating',
    pack=1,
    seed=0,
    cpu=False,
    objectives=False,
    smoke=False,
  )


def get_config(arg=None):
  arg = _parse(arg)
  smoke = ',smoke' if arg.smoke else ''
  c = toy_ring.get_config(f'loss={arg.loss},dataset={arg.dataset}{smoke}')
  c.seed = arg.seed
  c.model.pack = arg.pack
  c.model.g.update(norm='batch', bn_epsilon=1e-4, weight_init='normal:0.02')
  c.model.g_bn_per_slot = True
  c.model.d.update(hidden=(200, 200, 200), pieces=5, weight_init='normal:0.02')
  c.update_scheme = 'simultaneous'
  c.standing_stats = True  # BN of the evaluated weights, as released
  c.matmul_precision = 'float32'
  c.optim.update(lr=1e-4, b1=0.8)
  c.data.num_train = 100_000
  packs = SMOKE_PACKS_PER_BATCH if arg.smoke else PACKS_PER_BATCH
  c.batch_size = packs * arg.pack
  c.num_steps = CPU_STEPS if arg.cpu else NUM_STEPS
  c.steps_per_dispatch = 100
  c.log_every = 100
  c.eval.every = c.checkpoint_every = EPOCH
  c.sample_every = 10 * EPOCH
  c.eval.metrics = 'modes'
  c.eval.best_metric = ''
  if arg.smoke:
    c.model.g.hidden = (32, 32)
    c.model.d.hidden = (16, 16)
    c.model.d.pieces = 2
    c.data.num_train = 1000
    c.num_steps = 200
    c.steps_per_dispatch = 50
    c.log_every = 50
    c.eval.every = c.checkpoint_every = c.sample_every = 100
  return c


def get_hyper(arg=None):
  """Packings m of the paper's GAN (non-saturating) on both datasets, seeds
  varying fastest; with `objectives`, also the other objectives at m = 1."""
  arg = _parse(arg)
  if arg.smoke:
    return _sweep(('ring',), (), (1, 2), 2, SMOKE_PACKS_PER_BATCH)
  if arg.cpu:
    return _sweep(DATASETS, (), CPU_PACKS, CPU_SEEDS, PACKS_PER_BATCH)
  others = LOSSES[1:] if arg.objectives else ()
  return _sweep(DATASETS, others, PACKS, NUM_SEEDS, PACKS_PER_BATCH)


def _sweep(datasets, other_losses, packs, num_seeds, packs_per_batch):
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

  per_dataset = points(('non_saturating',), packs)
  if other_losses:
    per_dataset += points(other_losses, (1,))
  return hyper.product(
    [
      hyper.sweep('data.name', datasets),
      per_dataset,
      hyper.sweep('seed', range(num_seeds)),
    ]
  )


# The equivalence margin of each column: half the gap between the paper's
# GAN and PacGAN2 on the same dataset, the smallest effect Table 1 reports
# there; a difference below it cannot be mistaken for that effect.
METRICS = ('modes', 'high_quality', 'reverse_kl')


def _margin(name: str, i: int) -> float:
  return abs(PAPER[name][1][i][0] - PAPER[name][2][i][0]) / 2


def get_reference(arg=None):
  """PAPER beside our groups of the same dataset and packing (GAN = NS),
  as gan_jax.report.verdict rows."""
  del arg
  reason = "half the paper's GAN-PacGAN2 gap in this column"
  return {
    'source': 'Lin et al. 2018, Table 1',
    'rows': [
      {
        'label': f'{name}, {"GAN" if m == 1 else f"PacGAN{m}"}',
        'where': {'data.name': name, 'loss': 'non_saturating', 'model.pack': m},
        'budget': NUM_STEPS,
        'metrics': {
          metric: {
            'value': mean,
            'error': se,
            'kind': 'se_trials',
            'n': 10,
            'margin': _margin(name, i),
            'reason': reason,
          }
          for i, (metric, (mean, se)) in enumerate(zip(METRICS, values))
        },
      }
      for name, by_pack in PAPER.items()
      for m, values in by_pack.items()
    ],
  }
