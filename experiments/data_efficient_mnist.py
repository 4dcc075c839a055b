"""Data-efficient GAN training on MNIST: augmentation, LeCam, consistency.

  python launch.py --config=experiments/data_efficient_mnist.py:images=600 \\
      --workdir=runs/data_efficient_600 --sweep \\
      --config.data.manual_dir=../shared/data/mnist
  python launch.py --config=experiments/data_efficient_mnist.py:smoke \\
      --workdir=runs/data_efficient_smoke --sweep
  python -m gan_jax.report runs/data_efficient_600 --out OUT
One point alone: --config=experiments/data_efficient_mnist.py:images=600,method=diffaugment,seed=1
without --sweep. Arguments: images=<training images: 600, 3000 or 60000>
(600), method=<a name of METHODS> (none), leg=<a key of LEGS> (main: the
methods a sweep runs), updates=<int> (NUM_STEPS; 4 evaluations at every
quarter), seed=<int> (0), seeds=<seeds a sweep runs> (3), smoke.

The question (Zhao et al. 2020; Karras et al. 2020; Tseng et al. 2021): on
a small training set D memorises its images and G's samples get worse;
do differentiable augmentation (DiffAugment), adaptive augmentation (ADA),
LeCam regularisation and consistency regularisation (CR, bCR) stop it, and
does their gain shrink with more data? Each point trains the unconditional
DCGAN of experiments/mnist_dcgan.py (non-saturating loss, BatchNorm in
both players, Adam b1 0.5) on a class-stratified subset of MNIST's
training split (60 or 300 images a class, subset_seed 0 for every seed, or
the whole split), and at every quarter of its updates scores FD and KID of 10,000
samples against the test split (LeNet features) and D's outputs on 1,000
(or all) training images against as many test images (gan_jax/overfitting.py).

Settings beside the papers' (each paper's released code read for them):
  setting            papers                              here
  data               CIFAR-10 10-20 %, FFHQ 2k, 100-shot  MNIST 600 / 60,000
  model              BigGAN / StyleGAN2                   DCGAN, G 64, D 32
  DiffAugment policy color,translation,cutout (CIFAR)     the same
  ADA                target 0.6, interval 4, 500 kimg,    the same; p clipped
                     'bgc' pipeline, p clamped at 0       to [0, 1]; bilinear
                                                          for their bicubic;
                                                          hue absent (one
                                                          channel)
  LeCam              weight 0.3 (BigGAN CIFAR), decay     the same
                     0.99, start 1000 (google/lecam-gan)
  CR / bCR           10 / 10 and 10, flip + translation   10 / 10 and 10,
                                                          translation only
                                                          (a flipped digit
                                                          is another digit)
  length             tens of millions of images           NUM_STEPS x 64
The differences that remain are the scale (model, data, length: a 2-core
CPU budget) and the augmentations a digit does not survive; the findings
tested are the papers' qualitative ones, not their numbers. At the paper's
adjustment speed (p from 0 to 1 in 500,000 images) ADA's p can reach at
most 2,000 x 64 / 500,000 = 0.26 in NUM_STEPS updates: the protocol's
speed, not a tuned one.
Legs (LEGS): main (the five methods above), scale (none and DiffAugment,
for images=60000, and with updates=10000 on 600 images: does augmentation
pay once the unaugmented runs stop improving?), consistency (CR, bCR), leak
(DiffAugment on the real images only). Budget (2-core AMD EPYC with
AVX-512): 3 to 6 min a point of 2,000 updates with its 4 evaluations (the
second beside other work), about 5 times that at updates=10000.
Smoke: the mnist_dcgan smoke model, 20 updates, 200 samples, two methods.
"""

from gan_jax import config as config_lib
from gan_jax import errors, hyper
from experiments import mnist_dcgan

MNIST_TRAIN = 60_000
METHODS = {
  'none': {'augment.method': ''},  # the base: every default
  'diffaugment': {'augment.method': 'diffaugment'},
  'ada': {'augment.method': 'ada'},
  'lecam': {'lecam.weight': 0.3},
  'diffaugment_lecam': {'augment.method': 'diffaugment', 'lecam.weight': 0.3},
  'cr': {'consistency.real': 10.0},
  'bcr': {'consistency.real': 10.0, 'consistency.fake': 10.0},
  'diffaugment_reals_only': {
    'augment.method': 'diffaugment',
    'augment.reals_only': True,
  },
}
LEGS = {
  'main': ('none', 'diffaugment', 'ada', 'lecam', 'diffaugment_lecam'),
  'scale': ('none', 'diffaugment'),
  'consistency': ('cr', 'bcr'),
  'leak': ('diffaugment_reals_only',),
}
NUM_STEPS = 2000


def _arg(arg):
  return config_lib.parse_arg(
    arg,
    images=600,
    method='none',
    leg='main',
    updates=NUM_STEPS,
    seed=0,
    seeds=3,
    smoke=False,
  )


def get_config(arg=None):
  arg = _arg(arg)
  errors.check_name('method', arg.method, METHODS)
  errors.check_name('leg', arg.leg, LEGS)
  c = mnist_dcgan.get_config('smoke' if arg.smoke else None)
  c.seed = arg.seed
  c.data.train_fraction = min(1.0, arg.images / MNIST_TRAIN)
  c.data.subset_seed = 0
  for field, value in METHODS[arg.method].items():
    config_lib.set_field(c, field, value)
  if arg.smoke:
    c.eval.metrics = 'fd'
    c.eval.d_images = 100
    return c
  c.model.d.width = 32
  c.num_steps = arg.updates
  c.log_every = 50
  c.sample_every = c.checkpoint_every = c.eval.every = arg.updates // 4
  c.eval.metrics = 'fd,kid'
  c.eval.d_images = 1000
  return c


def get_hyper(arg=None):
  """The leg's methods x seeds seed..seed+seeds-1 (smoke: none and
  diffaugment, one seed)."""
  arg = _arg(arg)
  names = ('none', 'diffaugment') if arg.smoke else LEGS[arg.leg]
  seeds = range(arg.seed, arg.seed + (1 if arg.smoke else arg.seeds))
  return hyper.product(
    [[METHODS[n] for n in names], hyper.sweep('seed', seeds)]
  )
