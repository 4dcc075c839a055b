"""CIFAR-10 32x32 with the SNGAN models (Miyato et al. 2018).

  python launch.py --config=experiments/cifar10_sngan.py --workdir=runs/sngan
  python launch.py --config=experiments/cifar10_sngan.py:model=dcgan,smoke ...
Arguments: loss=<name> (default hinge, as in SNGAN), model=resnet|dcgan
(the ResNet of Table 4 or the DCGAN-style CNN), smoke.
Defaults follow SNGAN's ResNet setting: Adam lr 2e-4, b1 0, b2 0.9,
n_critic 5, batch 64, spectral normalisation in D.
"""

import ml_collections

from gan_jax import config as config_lib
from gan_jax import losses


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, loss='hinge', model='resnet', smoke=False)
  c = config_lib.base_config()
  c.loss = arg.loss
  c.data.name = 'cifar10'
  c.model.name = arg.model
  c.model.z_dim = 128
  c.model.g = ml_collections.ConfigDict()
  c.model.d = ml_collections.ConfigDict({'spectral_norm': True})
  if arg.model == 'dcgan':
    c.model.d.norm = 'none'
  c.optim.update({'lr': 2e-4, 'b1': 0.0, 'b2': 0.9})
  c.batch_size = 64
  c.d_steps = 5
  c.num_steps = 50_000
  c.ema_decay = 0.9999
  c.steps_per_dispatch = 10
  c.log_every = 100
  c.sample_every = c.checkpoint_every = 5000
  # FID/KID on the FID Inception-v3 (Heusel et al. 2017): pass
  # --config.eval.inception_path (see gan_jax/metrics/inception.py).
  c.eval.every = 5000
  c.eval.metrics = 'fd,kid,pr,dc,is'
  c.eval.feature_net = 'inception'
  losses.apply_defaults(c)

  if arg.smoke:
    c.model.g.width = c.model.d.width = 8
    c.batch_size = 8
    c.d_steps = 1
    c.num_steps = 4
    c.steps_per_dispatch = 2
    c.log_every = c.sample_every = c.checkpoint_every = 2
    c.num_samples = 16
    c.eval.metrics = 'fd,kid'  # on raw pixels: no weights file needed
    c.eval.feature_net = 'raw'
    c.eval.num_samples = 16
  return c
