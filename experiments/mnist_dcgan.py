"""DCGAN on MNIST (Radford et al. 2016), generator loss chosen by `loss=`.

  python launch.py --config=experiments/mnist_dcgan.py --workdir=runs/dcgan
  python launch.py --config=experiments/mnist_dcgan.py:loss=minimax,smoke ...
Arguments: loss=<name> (see gan_jax.losses.LOSSES), smoke (a run of under a
minute on 2 CPU cores).
"""

import ml_collections

from gan_jax import config as config_lib
from gan_jax import losses


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, loss='non_saturating', smoke=False)
  c = config_lib.base_config()
  c.loss = arg.loss
  c.model.name = 'dcgan'
  c.model.g = ml_collections.ConfigDict({'width': 128, 'conv': 'gemm'})
  c.model.d = ml_collections.ConfigDict(
    {'width': 64, 'conv': 'gemm', 'norm': 'batch'}
  )
  losses.apply_defaults(c)

  if arg.smoke:
    c.model.g.width, c.model.d.width = 16, 8
    c.batch_size = 16
    c.num_steps = 20
    c.steps_per_dispatch = 5
    c.log_every = c.sample_every = c.checkpoint_every = 10
    c.num_samples = 16
    c.eval.every = 0
    c.eval.num_samples = 200
    c.eval.classifier_steps = 300  # a 97.6% LeNet: plumbing, not numbers
  return c
