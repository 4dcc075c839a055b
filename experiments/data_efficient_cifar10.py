"""DiffAugment on CIFAR-10 with 10 %, 20 % and 100 % of the data (Zhao et
al. 2020, Table 2's BigGAN rows), for an accelerator.

  python launch.py --config=experiments/data_efficient_cifar10.py \\
      --workdir=runs/de_cifar10 --sweep \\
      --config.eval.inception_path=<FID Inception .npz>
  python -m gan_jax.report runs/de_cifar10 --out docs/results/data_efficient_cifar10
  python launch.py --config=experiments/data_efficient_cifar10.py:smoke \\
      --workdir=runs/de_cifar10_smoke --sweep
Arguments: fraction=<share of the training split> (1.0), method=none|
diffaugment (none), seed=<int> (0), seeds=<seeds a sweep runs> (3), smoke.
Sweep: fraction in FRACTIONS x method x seeds.

Needs the CIFAR-10 TFDS files and the FID Inception-v3 weights
(gan_jax/metrics/inception.py), and a GPU: 100,000 updates of the SNGAN
ResNet at batch 64 with 5 D steps a G step, about a day of one GPU a point.

Settings beside the paper's (mit-han-lab/data-efficient-gans,
DiffAugment-biggan-cifar/scripts/DiffAugment-biggan-cifar10-0.1.sh):
  setting     paper                                  here
  model       BigGAN (CIFAR): G/D ch 64, attention   the SNGAN ResNet of
              off, orthogonal init off, N(0, 0.02)   experiments/cifar10_sngan.py
  objective   hinge                                  hinge
  optimizer   Adam 2e-4 both, b1 0, b2 0.999,         Adam 2e-4, b1 0, b2 0.9,
              4 D steps, batch 50                     5 D steps, batch 64
  subset      the first 10 % / 20 % of each class    a class-stratified share
  policy      color,translation,cutout               the same
  EMA         G, start 1000                          G, decay 0.9999
  FID         10,000 samples against the training    10,000 samples against
              set (fid10k)                           the test split
The model family differs (no BigGAN here): the verdicts test whether a
smaller ResNet GAN shows the paper's numbers, the margin being half the
gap DiffAugment closes at each fraction.
"""

from gan_jax import config as config_lib
from gan_jax import hyper
from experiments import cifar10_sngan

FRACTIONS = (0.1, 0.2, 1.0)
# DiffAugment's README (BigGAN, CIFAR-10, fid10k of the released models:
# one model each; evaluation repeats within 1 % relative).
PAPER_FID = {
  (0.1, ''): 39.78,
  (0.1, 'diffaugment'): 22.40,
  (0.2, ''): 21.58,
  (0.2, 'diffaugment'): 14.04,
  (1.0, ''): 9.59,
  (1.0, 'diffaugment'): 8.70,
}


def _arg(arg):
  return config_lib.parse_arg(
    arg, fraction=1.0, method='none', seed=0, seeds=3, smoke=False
  )


def get_config(arg=None):
  arg = _arg(arg)
  c = cifar10_sngan.get_config('smoke' if arg.smoke else None)
  c.seed = arg.seed
  c.data.train_fraction = arg.fraction
  c.augment.method = '' if arg.method == 'none' else arg.method
  c.eval.d_images = 0 if arg.smoke else 1000
  if not arg.smoke:
    c.num_steps = 100_000
    c.eval.metrics = 'fd,kid,is'
  return c


def get_hyper(arg=None):
  arg = _arg(arg)
  fractions = (0.1,) if arg.smoke else FRACTIONS
  seeds = range(arg.seed, arg.seed + (1 if arg.smoke else arg.seeds))
  return hyper.product(
    [
      hyper.sweep('data.train_fraction', fractions),
      hyper.sweep('augment.method', ['', 'diffaugment']),
      hyper.sweep('seed', seeds),
    ]
  )


def get_reference(arg=None):
  """The README's six FIDs; margin: half the gap DiffAugment closes at that
  fraction (a difference below it keeps the paper's ordering)."""
  del arg
  rows = []
  for (fraction, method), value in PAPER_FID.items():
    gap = PAPER_FID[(fraction, '')] - PAPER_FID[(fraction, 'diffaugment')]
    rows.append(
      {
        'label': f'BigGAN{" + DiffAugment" if method else ""}, '
        f'{fraction:.0%} of CIFAR-10',
        'where': {'data.train_fraction': fraction, 'augment.method': method},
        'metrics': {
          'fd': {
            'value': value,
            'error': 0,
            'kind': 'one_run',
            'margin': round(gap / 2, 2),
            'reason': 'half the FID gap DiffAugment closes at this fraction',
          }
        },
      }
    )
  return {
    'source': 'Zhao et al. 2020, Table 2 (DiffAugment-biggan-cifar README)',
    'rows': rows,
  }
