"""Lucic et al. 2018, "Are GANs Created Equal?", on MNIST: six objectives.

  python launch.py --config=experiments/lucic2018_mnist.py \\
      --workdir=runs/lucic --sweep
  python launch.py --config=experiments/lucic2018_mnist.py:smoke \\
      --workdir=runs/lucic_smoke --sweep
  python -m gan_jax.report runs/lucic
One point alone: --config=experiments/lucic2018_mnist.py:loss=wasserstein
(the loss's paired fields are set with it), then --config.optim.lr=... and
--config.seed=...; no --sweep. Where TFDS cannot download MNIST, add
--config.data.manual_dir=<folder of the four original .gz files>.
Arguments: loss=<name> (a gan_jax loss; the sweep runs the six of GANS),
smoke.

The objectives, as named in the paper -> gan_jax.losses.LOSSES, with the
fields their own papers pair them with (GANS below):
  MM GAN  minimax         Goodfellow et al. 2014, log(1 - D(G(z)))
  NS GAN  non_saturating  Goodfellow et al. 2014, -log D(G(z))
  LSGAN   least_squares   Mao et al. 2017
  WGAN    wasserstein     Arjovsky et al. 2017: n_critic 5 (d_steps=5),
                          D weights clipped to [-0.01, 0.01]
  WGAN GP wasserstein_gp  Gulrajani et al. 2017: n_critic 5, lambda 10
  DRAGAN  dragan          Kodali et al. 2017: lambda 10
The gradient penalties need a per-example critic, so WGAN GP and DRAGAN use
layer norm in D where the others use BatchNorm (losses.apply_defaults,
after Gulrajani et al. 2017); otherwise every objective has the same
networks, the MNIST DCGAN of experiments/mnist_dcgan.py (Radford et al.
2016), and the same Adam (b1 0.5, b2 0.999) and batch 64 (as Lucic et al.).
Sweep: objective x optim.lr in LRS x seed in range(2): 6 x 2 x 2 = 24 runs,
each scored by the Fréchet distance on the project's LeNet features (10,000
samples against the test split), with KID beside it.

Lucic et al. 2018 report the best FID on MNIST of each objective over a
large hyperparameter search: MM GAN 9.8, NS GAN 6.8, LSGAN 7.8, WGAN 6.7,
WGAN GP 20.3, DRAGAN 7.6. Those are on Inception-v3
features and LeNet FDs here have another scale: compare the ranking and
the spread between objectives, not the values. Their finding is that most
objectives reach similar scores given enough search and restarts, none
consistently better than NS GAN.

Budget: G width 32 and D width 16 (not 128 and 64), batch 64, 600
generator updates per run (d_steps 5 for the WGANs), evaluation at the end
only. On 2 idle CPU cores a run (compilation, 600 updates, evaluation)
takes 13-16 s for MM, NS and LSGAN, 16-17 s for DRAGAN, 26-29 s for WGAN
and 34-35 s for WGAN GP; the 24 runs took 8 min 42 s. Lucic et
al. trained each of ~100 hyperparameter settings per objective for 20
epochs (~19,000 updates at batch 64) on GPUs; these runs are
early-training snapshots, so the ranking says which objective learns
fastest at a small budget, not which is best at convergence.
Smoke: the mnist_dcgan smoke model, 20 steps, 200 samples, the 300-step
LeNet, one lr and one seed per objective; seconds a point.
"""

from gan_jax import config as config_lib
from gan_jax import hyper
from experiments import mnist_dcgan

# Lucic et al. name -> (gan_jax loss, discriminator updates per G update).
# Weight clipping (WGAN) and D's norm (WGAN GP, DRAGAN) come from
# losses.apply_defaults; penalty weights are the losses' own (10).
GANS = {
  'MM GAN': ('minimax', 1),
  'NS GAN': ('non_saturating', 1),
  'LSGAN': ('least_squares', 1),
  'WGAN': ('wasserstein', 5),
  'WGAN GP': ('wasserstein_gp', 5),
  'DRAGAN': ('dragan', 1),
}
LRS = (2e-4, 1e-3)
NUM_SEEDS = 2
# Fields that depend on the loss: each sweep point sets them with it.
LOSS_FIELDS = ('d_steps', 'd_weight_clip', 'model.d.norm')


def _arg(arg):
  return config_lib.parse_arg(arg, loss='non_saturating', smoke=False)


def get_config(arg=None):
  arg = _arg(arg)
  n_critic = dict(GANS.values()).get(arg.loss, 1)
  c = mnist_dcgan.get_config(
    f'loss={arg.loss},recipe=radford' + (',smoke' if arg.smoke else '')
  )
  c.d_steps = n_critic
  c.eval.metrics = 'fd,kid'
  c.eval.best_metric = 'fd'
  if arg.smoke:
    return c
  c.model.g.width, c.model.d.width = 32, 16
  c.batch_size = 64
  c.num_steps = 600
  c.steps_per_dispatch = 20
  c.log_every = 20
  c.sample_every = c.checkpoint_every = 300
  c.eval.every = 0  # only at the end
  return c


def _get(c, field):
  for key in field.split('.'):
    c = c[key]
  return c


def get_hyper(arg=None):
  """(loss with its LOSS_FIELDS) x optim.lr x seed.

  Full: 6 x 2 x 2 = 24 points; smoke: 6 x 1 x 1.
  """
  smoke = _arg(arg).smoke
  losses = [loss for loss, _ in GANS.values()]
  configs = [
    get_config(f'loss={l}' + (',smoke' if smoke else '')) for l in losses
  ]
  objectives = hyper.zipit(
    [hyper.sweep('loss', losses)]
    + [hyper.sweep(f, [_get(c, f) for c in configs]) for f in LOSS_FIELDS]
  )
  return hyper.product(
    [
      objectives,
      hyper.sweep('optim.lr', LRS[:1] if smoke else LRS),
      hyper.sweep('seed', range(1 if smoke else NUM_SEEDS)),
    ]
  )
