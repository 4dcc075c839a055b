"""Do a class-conditional GAN's samples help a classifier with few labels?

  python launch.py --config=experiments/augmentation_mnist.py \\
      --workdir=runs/augmentation --sweep
  python launch.py --config=experiments/augmentation_mnist.py:smoke \\
      --workdir=runs/augmentation_smoke --sweep
  python -m gan_jax.report runs/augmentation
One point alone: --config=experiments/augmentation_mnist.py:fraction=0.01,seed=1
without --sweep. Where TFDS cannot download MNIST, add
--config.data.manual_dir=<folder of the four original .gz files>.
Arguments: fraction=<share of the MNIST training labels> (1.0), seed=<int>
(the run's seed and the labelled subset's), smoke.

For each share f of the labelled MNIST training set (FRACTIONS: 1%, 5% and
100%, a class-stratified subset drawn from the seed, config.data), a
class-conditional DCGAN is trained on that subset alone: G with
class-conditional BatchNorm, D with the projection head (Miyato & Koyama
2018), the non-saturating loss. At the end, 10,000 samples with balanced
labels are scored (gan_jax.evaluate):
  real_accuracy       the project's LeNet trained on the labelled subset;
  augmented_accuracy  the same LeNet trained on the subset plus the
                      samples, half of every batch from each;
  cas                 trained on the samples only (Classification Accuracy
                      Score, Ravuri & Vinyals 2019);
each is top-1 accuracy on the real MNIST test split, with the LeNet's
training seed the run's seed; FD, KID and precision/recall on the LeNet
features of the evaluator beside them. Sweep: f in FRACTIONS x seed in
range(NUM_SEEDS), the labelled subset drawn anew for every seed.

Ravuri & Vinyals (2019) found CAS well below the real-data baseline for
every ImageNet GAN they scored, and no gain from adding samples to the full
real training set; the question here is whether samples help where real
labels are few (Antoniou et al. 2017 argue they do).

Budget: G width 64, D width 32 (half of mnist_dcgan's), batch 64, 3,000
generator updates, LeNets of 1,000 steps (batch 128) for the accuracies.
On 2 idle CPU cores the 9 points took 19 min 55 s, about 2 min 13 s a
point, of which the final evaluation (three LeNets, FD, KID,
precision/recall) is about 40 s.
Smoke: the mnist_dcgan smoke model, 20 steps, 200 samples, 50-step LeNets,
fractions 1% and 100% with one seed; seconds a point.
"""

from gan_jax import config as config_lib
from gan_jax import hyper
from experiments import mnist_dcgan

FRACTIONS = (0.01, 0.05, 1.0)
NUM_SEEDS = 3


def _arg(arg):
  return config_lib.parse_arg(arg, fraction=1.0, seed=0, smoke=False)


def get_config(arg=None):
  arg = _arg(arg)
  c = mnist_dcgan.get_config('recipe=radford' + (',smoke' if arg.smoke else ''))
  c.seed = c.data.subset_seed = arg.seed
  c.data.train_fraction = arg.fraction
  c.model.num_classes = 10
  c.model.g.cond, c.model.d.cond = 'bn', 'projection'
  c.eval.every = 0  # the classifiers take a minute each: only at the end
  if arg.smoke:
    c.eval.metrics = 'fd,cas,augment'
    c.eval.cas_steps = 50
    return c
  c.model.g.width, c.model.d.width = 64, 32
  c.batch_size = 64
  c.num_steps = 3000
  c.log_every = 50
  c.num_samples = 100  # a 10 x 10 grid: a row per class
  c.sample_every = c.checkpoint_every = 500
  c.eval.metrics = 'fd,kid,pr,cas,augment'
  c.eval.cas_steps = 1000
  return c


def get_hyper(arg=None):
  """fraction x seed (full: 3 x 3 points; smoke: 2 x 1)."""
  smoke = _arg(arg).smoke
  fractions = (0.01, 1.0) if smoke else FRACTIONS
  seeds = range(1 if smoke else NUM_SEEDS)
  return hyper.product(
    [
      hyper.sweep('data.train_fraction', fractions),
      hyper.zipit(
        [hyper.sweep('seed', seeds), hyper.sweep('data.subset_seed', seeds)]
      ),
    ]
  )
