"""DCGAN on MNIST (Radford et al. 2016), generator loss chosen by `loss=`.

  python launch.py --config=experiments/mnist_dcgan.py --workdir=runs/dcgan
  python launch.py --config=experiments/mnist_dcgan.py:loss=minimax,smoke ...
Arguments: loss=<name> (see gan_jax.losses.LOSSES), smoke (a run of under a
minute on 2 CPU cores).
"""

import ml_collections
from ml_collections import config_dict

from gan_jax import config as config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, loss='non_saturating', smoke=False)
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.loss = arg.loss

  c.data = ml_collections.ConfigDict()
  c.data.name = 'mnist'
  c.data.data_dir = config_dict.placeholder(str)  # None: TFDS default
  c.data.manual_dir = config_dict.placeholder(str)  # folder of original files

  c.model = ml_collections.ConfigDict()
  c.model.name = 'dcgan'
  c.model.z_dim = 100
  c.model.g = ml_collections.ConfigDict({'width': 128, 'conv': 'gemm'})
  c.model.d = ml_collections.ConfigDict({'width': 64, 'conv': 'gemm'})

  c.optim = ml_collections.ConfigDict({'lr': 2e-4, 'b1': 0.5, 'b2': 0.999})
  c.batch_size = 128  # global, split over all devices
  c.num_steps = 3000
  c.d_steps = 1  # discriminator updates per generator update
  c.steps_per_dispatch = 10  # iterations per compiled call (lax.scan)

  c.log_every = 50
  c.sample_every = 500
  c.num_samples = 64
  c.checkpoint_every = 500
  c.keep_checkpoints = 3

  if arg.smoke:
    c.model.g.width, c.model.d.width = 16, 8
    c.batch_size = 16
    c.num_steps = 20
    c.steps_per_dispatch = 5
    c.log_every = c.sample_every = c.checkpoint_every = 10
    c.num_samples = 16
  return c
