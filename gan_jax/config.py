"""The config: its fields and defaults, `key=value` arguments, saved copies.

Pure ml_collections (no JAX): config files and the report import it. The
read-time checks are in gan_jax/validate.py.
"""

import functools
import json

import ml_collections
from ml_collections import config_dict

from gan_jax.errors import ConfigError, check_name


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses 'a=1,b=x,smoke' into a ConfigDict typed by `defaults`.

  A bare word `w` means `w=True`. Every key must appear in `defaults`, whose
  values give the type each string is converted to.
  """
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or '').split(',')):
    key, sep, value = item.partition('=')
    check_name('config argument', key, defaults)
    kind = type(defaults[key])
    if not sep:
      value = True
    elif kind is bool:
      value = value.lower() in ('1', 'true', 'yes')
    else:
      value = kind(value)
    out[key] = value
  return out


def set_field(c: ml_collections.ConfigDict, field: str, value) -> None:
  """c.<dotted field> = value (a list becomes a tuple where the field holds
  one); ConfigError when the field does not exist."""
  *parents, leaf = field.split('.')
  node = c
  for p in parents:
    node = node.get(p) if isinstance(node, ml_collections.ConfigDict) else 0
  if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
    raise ConfigError(f'config.{field} does not exist')
  if isinstance(node[leaf], tuple) and isinstance(value, list):
    value = tuple(value)
  node[leaf] = value


def base_config() -> ml_collections.ConfigDict:
  """Every field the training loop reads, with defaults; experiments patch it.

  Regularisers are off at their zero value; the comments give the value the
  paper uses when it is on.
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.loss = 'non_saturating'  # a name in gan_jax.losses.LOSSES

  c.data = ml_collections.ConfigDict()
  # A name in gan_jax.data.DATASETS: 'mnist' is TFDS's shuffled order,
  # 'mnist_original' the original files' (from manual_dir; pylearn2's).
  c.data.name = 'mnist'
  c.data.data_dir = config_dict.placeholder(str)  # None: TFDS default
  c.data.manual_dir = config_dict.placeholder(str)  # folder of original files
  # < 1: train on a class-stratified share of the training split (the
  # labelled subset of a small-data study), drawn from subset_seed.
  c.data.train_fraction = 1.0
  c.data.subset_seed = 0
  # The split trained on, or a slice of it: Goodfellow et al. 2014 train on
  # 'train[0:50000]' of mnist_original (train[50000:51000] chooses the
  # Parzen sigma).
  c.data.train_split = 'train'
  # How batches take the training examples: 'uniform' (each independently,
  # with replacement) or 'epochs' (the global batches run through a new
  # permutation of the N examples every epoch, without replacement, a batch
  # spanning two epochs where B does not divide N; pylearn2's
  # shuffled_sequential, the SGD default of Goodfellow et al. 2014's code).
  c.data.batching = 'uniform'
  # Images as models see them: [-1, 1] (tanh G) or, True, [0, 1] (sigmoid G;
  # Goodfellow et al. 2014). Samples are mapped back to [-1, 1] for metrics.
  c.data.unit_range = False
  # Toy mixtures: 0 draws every batch afresh; N > 0 trains on one fixed set
  # of N points drawn from subset_seed (PacGAN: 100,000).
  c.data.num_train = 0

  c.model = ml_collections.ConfigDict()
  c.model.name = 'dcgan'  # a name in gan_jax.models.MODELS
  c.model.z_dim = 100
  # The noise prior: 'normal' N(0, I) or 'uniform' on [-sqrt 3, sqrt 3]^z_dim
  # (unit variance; Goodfellow et al. 2014's released code).
  c.model.z_prior = 'normal'
  c.model.g = ml_collections.ConfigDict()  # generator constructor fields
  c.model.d = ml_collections.ConfigDict()  # discriminator constructor fields
  # PacGAN (Lin et al. 2018): m > 1 lets D score packs of m samples
  # concatenated on the last axis, one logit per pack (m = 2: PacGAN2). It
  # widens D's input layer, so it lives with the model: models.build wraps D.
  c.model.pack = 1
  # True (with pack > 1): G's training forward normalises each pack slot's
  # samples by their own BatchNorm statistics, as PacGAN's released code,
  # which calls G once per slot (updates.apply_g); False: the whole batch.
  c.model.g_bn_per_slot = False
  # K > 0: class-conditional G and D (the dataset's K classes; see
  # gan_jax.models.conditional): G's `cond` 'bn' (class-conditional
  # BatchNorm, DCGAN/ResNet) or 'concat' (onehot(y) with z), D's `cond`
  # 'projection' (Miyato & Koyama 2018) or 'acgan' (Odena et al. 2017).
  c.model.num_classes = 0

  # 'adam' (Radford et al. 2016: lr 2e-4, b1 0.5) or 'sgd' with momentum.
  # g_*/d_* override the shared value for one network: TTUR (Heusel et al.
  # 2017) uses d_lr > g_lr.
  c.optim = ml_collections.ConfigDict({'lr': 2e-4, 'b1': 0.5, 'b2': 0.999})
  for net in ('g', 'd'):
    for key in ('lr', 'b1', 'b2'):
      c.optim[f'{net}_{key}'] = config_dict.placeholder(float)
  c.optim.name = 'adam'
  # SGD: lr_t = max(lr / lr_decay^t, lr_min) after t updates; momentum rises
  # linearly from `momentum` to `momentum_final` between the updates of
  # `momentum_ramp` = (start, end) (Goodfellow et al. 2014: lr 0.1, decay
  # 1.000004, floor 1e-6, momentum 0.5 -> 0.7 over epochs 1 to 250).
  c.optim.momentum = 0.0
  c.optim.momentum_final = config_dict.placeholder(float)  # None: constant
  c.optim.momentum_ramp = (0, 0)
  c.optim.lr_decay = 1.0
  c.optim.lr_min = 0.0

  c.batch_size = 128  # global, split over all devices
  c.num_steps = 3000  # generator updates
  c.d_steps = 1  # discriminator updates per generator update (n_critic)
  # How the players move: 'alternating' (d_steps D updates, then G through
  # the updated D), or with d_steps = 1 'simultaneous' (both gradients at
  # the same parameters from one minibatch), 'extragradient', 'optimistic',
  # 'consensus' or 'unrolled'. See gan_jax/train_step.py.
  c.update_scheme = 'alternating'
  # Schemes that take G's gradient at D's parameters (all but alternating
  # and unrolled with unroll_steps > 0): True scores G by D's own pass on
  # the fakes (its dropout masks and instance noise), as the released code
  # of Goodfellow et al. 2014; False: G's pass through D draws its own.
  c.shared_fake_pass = False
  c.consensus_gamma = 10.0  # consensus: gamma/2 ||v||^2 (Mescheder 2017: 10)
  c.unroll_steps = 5  # unrolled: D steps G looks through (Metz 2017: 5, 10)
  c.penalty_weight = config_dict.placeholder(float)  # None: the loss's own
  c.r1_gamma = 0.0  # R1 on real data (Mescheder et al. 2018: 10)
  c.r2_gamma = 0.0  # R2: the same zero-centred penalty on G's samples
  # Instance noise (Sønderby et al. 2017): D sees x + sigma_t N(0, I), real
  # and fake, sigma_t = std, or decreasing linearly to 0 over anneal_steps
  # updates when anneal_steps > 0.
  c.instance_noise = ml_collections.ConfigDict({'std': 0.0, 'anneal_steps': 0})
  # Data-efficient training (gan_jax/augment.py). augment.method: ''
  # (none), 'diffaugment' (Zhao et al. 2020: `policy` on every image D
  # sees, real and generated, in both players' losses and the penalties) or
  # 'ada' (Karras et al. 2020: `ada_ops` each with probability p; p starts
  # at ada_p and, with ada_target > 0, moves by sign(r_t - ada_target)
  # B ada_interval / (ada_kimg 1000) every ada_interval D updates, r_t =
  # E[sign D(x)] on the real batches; ada_target 0 keeps p fixed).
  # reals_only: transform the real images only (the leaking baseline of
  # Zhao et al. 2020, Table 4).
  c.augment = ml_collections.ConfigDict(
    {
      'method': '',
      'policy': 'color,translation,cutout',
      'ada_ops': 'xflip,rotate90,xint,scale,rotate,aniso,xfrac,'
      'brightness,contrast,lumaflip',
      'ada_target': 0.6,
      'ada_p': 0.0,
      'ada_kimg': 500.0,
      'ada_interval': 4,
      'reals_only': False,
    }
  )
  # LeCam (Tseng et al. 2021): weight * (E relu(D(x) - a_F)^2 + E relu(a_R -
  # D(G(z)))^2) on D's logits, a_R, a_F moving averages (decay) of D's mean
  # logit on real and generated batches, from update `start` on (before it
  # the anchors follow the batch means and the term is off; google/lecam-gan:
  # weight 0.3 with BigGAN on CIFAR, decay 0.99, start 1000).
  c.lecam = ml_collections.ConfigDict(
    {'weight': 0.0, 'decay': 0.99, 'start': 1000}
  )
  # Consistency regularisation: real * E||D(x) - D(T(x))||^2 (CR, Zhang et
  # al. 2020: 10) and fake * the same on G's samples (bCR, Zhao et al. 2021:
  # 10), T the DiffAugment ops of `policy` (the papers: flip and shift; a
  # flipped digit is another digit).
  c.consistency = ml_collections.ConfigDict(
    {'real': 0.0, 'fake': 0.0, 'policy': 'translation'}
  )
  c.d_weight_clip = 0.0  # clip D weights to [-c, c] (Arjovsky et al.: 0.01)
  c.ema_decay = 0.0  # EMA of G weights for samples/evals (e.g. 0.999)
  # The EMA copies G's weights up to this update and averages after it
  # (BigGAN's ema_start, Brock et al. 2019): 0 averages from the initial
  # weights, whose share after t updates is decay^t.
  c.ema_start = 0
  # True: samples and evaluations use standing BatchNorm statistics for the
  # trained weights too (always with an EMA): each BatchNorm's batch mean and
  # variance of the sampled weights on 1,000 fixed draws of z, instead of
  # running averages that lag weights still moving (PacGAN's released code
  # refreshes them on 50 batches just before it samples).
  c.standing_stats = False
  # AC-GAN (model.d.cond='acgan'): weight of the class cross-entropy that D
  # minimises on real and fake and G on fake (Odena et al. 2017: 1).
  c.ac_weight = 1.0
  c.steps_per_dispatch = 10  # iterations per compiled call (lax.scan)
  # dtype of the train step's activations and matrix products: 'float32', or
  # 'bfloat16' (mixed precision: parameters, optimizer state, BatchNorm
  # statistics and losses stay float32; sampling and evaluation use float32).
  c.compute_dtype = 'float32'
  # Arithmetic of float32 matrix products in the train step and the
  # evaluation (jax.default_matmul_precision): 'default' (the backend's
  # fastest: TensorFloat-32 on NVIDIA GPUs from Ampere on, bfloat16 passes on
  # TPU), 'tensorfloat32', or 'float32' (full float32, what the GPUs of the
  # 2014-2018 papers computed). XLA:CPU computes full float32 for all three.
  c.matmul_precision = 'default'
  # K > 1: K models with seeds seed..seed+K-1 in one vmapped program, each
  # written to <workdir>/model_<i> as if it had run alone.
  c.num_models = 1

  c.log_every = 50
  c.sample_every = 500
  c.num_samples = 64
  c.checkpoint_every = 500
  c.keep_checkpoints = 3

  # Sample quality (gan_jax.evaluate): every `every` steps (0: only at the
  # end) and at the end; the best step by `best_metric` ('' for none) is
  # kept in best_checkpoint/.
  c.eval = ml_collections.ConfigDict()
  c.eval.every = 1000
  c.eval.metrics = 'fd,kid,pr,dc,is'  # names in gan_jax.metrics.METRICS
  c.eval.num_samples = 10_000
  c.eval.best_metric = 'fd'
  c.eval.feature_net = 'lenet'  # 'lenet', 'inception' or 'raw'
  c.eval.classifier_steps = 3000  # LeNet training steps (99.1% on MNIST)
  c.eval.cas_steps = 2000  # LeNet steps of the 'cas' and 'augment' metrics
  c.eval.inception_path = config_dict.placeholder(str)  # FID Inception .npz
  c.eval.cache_dir = '~/.cache/gan_jax'  # trained LeNet weights
  c.eval.batch_size = 500  # generation and feature extraction
  c.eval.parzen_grid = 10
  # D's overfitting: every evaluation scores D (inference mode, no
  # augmentation) on the first d_images training images and as many of the
  # test split, never trained on (0: off; image data only).
  c.eval.d_images = 1000  # Parzen widths: logspace(-1, 0, parzen_grid)
  return c


def _tuples(value):
  """JSON lists back to the tuples the config held."""
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def _merge(base: ml_collections.ConfigDict, saved: dict) -> None:
  """Writes `saved` over `base`; fields a newer version added keep defaults."""
  for key, value in saved.items():
    if isinstance(value, dict) and isinstance(
      base.get(key), ml_collections.ConfigDict
    ):
      _merge(base[key], value)
    else:
      base[key] = value


def from_saved(saved: dict) -> ml_collections.ConfigDict:
  """A run's config from its config.json contents, over today's defaults."""
  config = base_config()
  with config.ignore_type():
    _merge(config, _tuples(saved))
  return config


def to_dict(config: ml_collections.ConfigDict) -> dict:
  """The config as the plain JSON dict that config.json holds."""
  return json.loads(config.to_json_best_effort())


def flatten(config: dict, prefix: str = '') -> dict:
  """{'optim': {'lr': x}} -> {'optim.lr': x}."""
  out = {}
  for key, value in config.items():
    if isinstance(value, dict):
      out |= flatten(value, f'{prefix}{key}.')
    else:
      out[prefix + key] = value
  return out


def differing(dicts: list[dict]) -> list[str]:
  """Keys (first-seen order) whose values are not the same in all dicts."""
  keys = list(dict.fromkeys(k for d in dicts for k in d))
  return [
    k
    for k in keys
    if len({json.dumps(d.get(k), sort_keys=True) for d in dicts}) > 1
  ]


def changes(old: dict, new: dict) -> list[str]:
  """Dotted names of the fields that differ between two config dicts."""
  return sorted(differing([flatten(old), flatten(new)]))


@functools.cache
def _defaults() -> dict:
  return flatten(to_dict(base_config()))


def default(field: str):
  """base_config's value of the dotted `field`: what a partial (sub)config
  without it means, e.g. `model_config.get('pack', default('model.pack'))`."""
  return _defaults()[field]


def is_seed(field: str) -> bool:
  """'seed' and the other seeds of a config ('data.subset_seed')."""
  return field.rsplit('.', 1)[-1].endswith('seed')
