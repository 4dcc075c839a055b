"""MLP GAN on the 2-D mixtures of the mode-collapse literature (PacGAN setup).

  python launch.py --config=experiments/toy_ring.py:loss=hinge --workdir=runs/r
  python launch.py --config=experiments/toy_ring.py:dataset=grid,smoke ...
Arguments: loss=<name>, dataset=ring|grid (8 Gaussians on the unit circle,
std 0.01 / 25 on {-4,-2,0,2,4}^2, std 0.05; Lin et al. 2018), smoke.
"""

import ml_collections

from gan_jax import config as config_lib
from gan_jax import losses


def get_config(arg=None):
  arg = config_lib.parse_arg(
    arg, loss='non_saturating', dataset='ring', smoke=False
  )
  c = config_lib.base_config()
  c.loss = arg.loss
  c.data.name = arg.dataset
  c.model.name = 'mlp'
  c.model.z_dim = 2
  # Lin et al. 2018 (PacGAN, App. D): G 4 x 400 ReLU, D 3 x 200; linear output.
  c.model.g = ml_collections.ConfigDict(
    {'hidden': (400, 400, 400, 400), 'output': 'linear'}
  )
  c.model.d = ml_collections.ConfigDict({'hidden': (200, 200, 200)})
  c.optim.lr = 1e-4
  c.batch_size = 128
  c.num_steps = 10_000
  c.steps_per_dispatch = 100
  c.log_every = 100
  c.sample_every = c.checkpoint_every = 2000
  c.num_samples = 2500
  # PacGAN protocol: 2,500 samples; FD/PR/DC on the 2-D points themselves.
  c.eval.every = 2000
  c.eval.metrics = 'modes,fd,pr,dc'
  c.eval.feature_net = 'raw'
  c.eval.num_samples = 2500
  c.eval.best_metric = 'reverse_kl'
  losses.apply_defaults(c)

  if arg.smoke:
    c.model.g.hidden = c.model.d.hidden = (32, 32)
    c.batch_size = 32
    c.num_steps = 200
    c.steps_per_dispatch = 50
    c.log_every = c.sample_every = c.checkpoint_every = 100
    c.num_samples = 200
    c.eval.every = 100
    c.eval.num_samples = 200
  return c
