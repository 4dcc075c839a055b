"""Saturating (minimax) against non-saturating generator loss, MNIST DCGAN.

  python launch.py --config=experiments/saturation.py \\
      --workdir=runs/saturation --sweep
  python launch.py --config=experiments/saturation.py:smoke \\
      --workdir=runs/saturation_smoke --sweep
  python -m gan_jax.report runs/saturation
  python -m experiments.saturation docs/results/saturation/generator_losses.png
The last writes the figure of each loss's G loss and its gradient in the
logit against D(G(z)) (write_generator_losses; JAX, no training).
One point alone: --config=experiments/saturation.py:loss=minimax,seed=1
without --sweep. Where TFDS cannot download MNIST, add
--config.data.manual_dir=<folder of the four original .gz files>.
Arguments: loss=minimax|non_saturating (or any name in gan_jax.losses.LOSSES),
seed=<int>, smoke.

Goodfellow et al. 2014 (Sec. 3) note that early in training, when D rejects
samples with high confidence, log(1 - D(G(z))) saturates: its gradient in
the logit l is -sigmoid(l) = -D(G(z)), which vanishes as D(G(z)) -> 0,
while the non-saturating -log D(G(z)) has gradient -(1 - D(G(z))) -> -1.
Both share the same fixed point. The sweep is loss in [minimax,
non_saturating] x seed in range(3) (6 runs) on the MNIST DCGAN of
experiments/mnist_dcgan.py (Radford et al. 2016), with the same D loss.
Every run logs, every 10 steps, d_fake (mean D(G(z))), d_real, g_grad_norm
(norm of G's parameter gradient) and the losses, so the early collapse of
d_fake and of g_grad_norm under minimax shows in the first few hundred
steps; FD, KID, precision/recall, density/coverage and the classifier score
on the project's LeNet features (10,000 samples against the test split) are
computed every 500 steps and at the end.

Budget: G width 64 and D width 32 (half of mnist_dcgan's 128 and 64),
batch 64 rather than 128, mnist_dcgan's 3,000 generator updates, evaluated
every 500 steps. On 2 idle CPU cores one point takes about 2 min 12 s
(~41 steps/s; evaluations ~8.6 s each) and the 6 runs 13 min 29 s. Radford et al. trained their full-width
DCGAN for several epochs at batch 128 on a GPU; the collapse under minimax
happens within the first few hundred steps, so these runs show it, but
their final FDs are far from converged DCGAN numbers.
Smoke: the mnist_dcgan smoke model, 20 steps logged every 10, FD and KID of
200 samples on the 300-step LeNet, 2 seeds per loss; seconds a point.
"""

import os
import sys

import numpy as np

from gan_jax import config as config_lib
from gan_jax import hyper, losses
from gan_jax.report import figures
from experiments import mnist_dcgan

LOSSES = ('minimax', 'non_saturating')
NUM_SEEDS = 3


def _arg(arg):
  return config_lib.parse_arg(arg, loss='minimax', seed=0, smoke=False)


def get_config(arg=None):
  arg = _arg(arg)
  c = mnist_dcgan.get_config(
    f'loss={arg.loss},recipe=radford' + (',smoke' if arg.smoke else '')
  )
  c.seed = arg.seed
  if arg.smoke:
    c.eval.metrics = 'fd,kid'  # pr, dc against 10,000 references: seconds
    return c
  c.model.g.width, c.model.d.width = 64, 32
  c.batch_size = 64
  c.num_steps = 3000
  c.steps_per_dispatch = 10
  c.log_every = 10
  c.sample_every = c.checkpoint_every = 500
  c.eval.every = 500
  c.eval.metrics = 'fd,kid,pr,dc,is'
  c.eval.best_metric = 'fd'
  return c


def get_hyper(arg=None):
  """loss x seed (full: 2 x 3 points; smoke: 2 x 2)."""
  seeds = 2 if _arg(arg).smoke else NUM_SEEDS
  return hyper.product(
    [hyper.sweep('loss', LOSSES), hyper.sweep('seed', range(seeds))]
  )


def write_generator_losses(path, names=LOSSES):
  """Writes to `path` (PNG) each loss's G loss of one example and its
  gradient in the logit against D(G(z)); returns `path`, or None when no
  name is a loss. Names with the same G loss share a curve."""
  by_fn = {}
  for name in names:
    if name in losses.LOSSES:
      loss = losses.LOSSES[name]
      by_fn.setdefault((loss.g_loss, loss.g_needs_real), []).append(name)
  d = np.linspace(1e-3, 1 - 1e-3, 999)
  curves = []
  for (_, needs_real), group in by_fn.items():
    label = ', '.join(group) + (' (real logit 0)' if needs_real else '')
    curves.append((label, d, *losses.generator_loss_curves(group[0], d)))
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  return figures.plot_generator_losses(curves, path)


if __name__ == '__main__':
  print(write_generator_losses(sys.argv[1]))
