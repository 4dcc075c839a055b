"""Config helpers: `key=value` argument parsing and read-time validation."""

import ml_collections
from ml_collections import config_dict


class ConfigError(ValueError):
  """A config that cannot run; the message says what to change."""


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """Parses 'a=1,b=x,smoke' into a ConfigDict typed by `defaults`.

  A bare word `w` means `w=True`. Every key must appear in `defaults`, whose
  values give the type each string is converted to.
  """
  out = ml_collections.ConfigDict(defaults)
  for item in filter(None, (arg or '').split(',')):
    key, sep, value = item.partition('=')
    if key not in defaults:
      raise ConfigError(
        f'unknown config argument {key!r}; valid: {", ".join(defaults)}'
      )
    kind = type(defaults[key])
    if not sep:
      value = True
    elif kind is bool:
      value = value.lower() in ('1', 'true', 'yes')
    else:
      value = kind(value)
    out[key] = value
  return out


def base_config() -> ml_collections.ConfigDict:
  """Every field the training loop reads, with defaults; experiments patch it.

  Regularisers are off at their zero value; the comments give the value the
  paper uses when it is on.
  """
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.loss = 'non_saturating'  # a name in gan_jax.losses.LOSSES

  c.data = ml_collections.ConfigDict()
  c.data.name = 'mnist'  # a name in gan_jax.data.DATASETS
  c.data.data_dir = config_dict.placeholder(str)  # None: TFDS default
  c.data.manual_dir = config_dict.placeholder(str)  # folder of original files
  # < 1: train on a class-stratified share of the training split (the
  # labelled subset of a small-data study), drawn from subset_seed.
  c.data.train_fraction = 1.0
  c.data.subset_seed = 0

  c.model = ml_collections.ConfigDict()
  c.model.name = 'dcgan'  # a name in gan_jax.models.MODELS
  c.model.z_dim = 100
  c.model.g = ml_collections.ConfigDict()  # generator constructor fields
  c.model.d = ml_collections.ConfigDict()  # discriminator constructor fields
  # PacGAN (Lin et al. 2018): m > 1 lets D score packs of m samples
  # concatenated on the last axis, one logit per pack (m = 2: PacGAN2). It
  # widens D's input layer, so it lives with the model: models.build wraps D.
  c.model.pack = 1
  # K > 0: class-conditional G and D (the dataset's K classes; see
  # gan_jax.models.conditional): G's `cond` 'bn' (class-conditional
  # BatchNorm, DCGAN/ResNet) or 'concat' (onehot(y) with z), D's `cond`
  # 'projection' (Miyato & Koyama 2018) or 'acgan' (Odena et al. 2017).
  c.model.num_classes = 0

  # Adam (Radford et al. 2016: lr 2e-4, b1 0.5). g_*/d_* override the shared
  # value for one network: TTUR (Heusel et al. 2017) uses d_lr > g_lr.
  c.optim = ml_collections.ConfigDict({'lr': 2e-4, 'b1': 0.5, 'b2': 0.999})
  for net in ('g', 'd'):
    for key in ('lr', 'b1', 'b2'):
      c.optim[f'{net}_{key}'] = config_dict.placeholder(float)

  c.batch_size = 128  # global, split over all devices
  c.num_steps = 3000  # generator updates
  c.d_steps = 1  # discriminator updates per generator update (n_critic)
  c.penalty_weight = config_dict.placeholder(float)  # None: the loss's own
  c.r1_gamma = 0.0  # R1 on real data (Mescheder et al. 2018: 10)
  c.d_weight_clip = 0.0  # clip D weights to [-c, c] (Arjovsky et al.: 0.01)
  c.ema_decay = 0.0  # EMA of G weights for samples/evals (e.g. 0.999)
  # AC-GAN (model.d.cond='acgan'): weight of the class cross-entropy that D
  # minimises on real and fake and G on fake (Odena et al. 2017: 1).
  c.ac_weight = 1.0
  c.steps_per_dispatch = 10  # iterations per compiled call (lax.scan)
  # dtype of the train step's activations and matrix products: 'float32', or
  # 'bfloat16' (mixed precision: parameters, optimizer state, BatchNorm
  # statistics and losses stay float32; sampling and evaluation use float32).
  c.compute_dtype = 'float32'
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
  c.eval.metrics = 'fd,kid,pr,dc,is'  # names in gan_jax.evaluate.METRICS
  c.eval.num_samples = 10_000
  c.eval.best_metric = 'fd'
  c.eval.feature_net = 'lenet'  # 'lenet', 'inception' or 'raw'
  c.eval.classifier_steps = 3000  # LeNet training steps (99.1% on MNIST)
  c.eval.cas_steps = 2000  # LeNet steps of the 'cas' and 'augment' metrics
  c.eval.inception_path = config_dict.placeholder(str)  # FID Inception .npz
  c.eval.cache_dir = '~/.cache/gan_jax'  # trained LeNet weights
  c.eval.batch_size = 500  # generation and feature extraction
  return c


def apply_loss_defaults(c: ml_collections.ConfigDict) -> None:
  """Sets the training options an objective's paper pairs it with.

  Gradient penalties (WGAN-GP, DRAGAN) need a per-example critic, so a D that
  has a `norm` field gets layer norm (Gulrajani et al. 2017); the original
  WGAN clips D's weights to [-0.01, 0.01] (Arjovsky et al. 2017).
  """
  from gan_jax import losses  # pylint: disable=g-import-not-at-top

  if c.loss not in losses.LOSSES:
    return  # validate() reports it with the valid names
  if losses.LOSSES[c.loss].penalty and c.model.d.get('norm') == 'batch':
    c.model.d.norm = 'layer'
  if c.loss == 'wasserstein':
    c.d_weight_clip = 0.01


def check_name(kind: str, name: str, valid) -> None:
  """Raises ConfigError listing the valid names when `name` is not one."""
  if name not in valid:
    raise ConfigError(
      f'unknown {kind} {name!r}; valid: {", ".join(sorted(valid))}'
    )


def _check_pack(config) -> None:
  """model.pack >= 1 divides the per-device batch (D packs per device)."""
  import jax  # pylint: disable=g-import-not-at-top

  m = config.model.pack
  if not isinstance(m, int) or m < 1:
    raise ConfigError(f'config.model.pack must be an integer >= 1, got {m!r}')
  n_dev = jax.device_count()
  if m > 1 and config.batch_size % (n_dev * m):
    raise ConfigError(
      f'config.batch_size={config.batch_size} over {n_dev} device(s) does '
      f'not split into packs of config.model.pack={m} on every device; use '
      f'a batch_size that is a multiple of {n_dev * m}.'
    )


def _check_conditional(config, dataset) -> None:
  """model.num_classes is 0 or the dataset's; a usable training subset."""
  k, name = config.model.num_classes, config.data.name
  if k not in (0, dataset.num_classes):
    raise ConfigError(
      f'config.model.num_classes={k}: {name} has {dataset.num_classes} '
      f'classes; set it to {dataset.num_classes} (class-conditional) or 0.'
    )
  if k and config.model.pack > 1:
    raise ConfigError(
      'PacGAN packs (config.model.pack > 1) mix labels: use them with an '
      'unconditional model (config.model.num_classes=0).'
    )
  if config.ac_weight < 0:
    raise ConfigError(f'config.ac_weight must be >= 0, got {config.ac_weight}')
  f = config.data.train_fraction
  if not 0 < f <= 1:
    raise ConfigError(f'config.data.train_fraction must be in (0, 1], got {f}')
  if f < 1 and dataset.kind != 'image':
    raise ConfigError(
      f'config.data.train_fraction subsets image datasets; {name} is drawn '
      'afresh at every step: leave it at 1.'
    )


def _check_model(model_config, shape) -> None:
  """Builds G and D abstractly: unknown fields or values fail here."""
  import jax  # pylint: disable=g-import-not-at-top

  from gan_jax import models  # pylint: disable=g-import-not-at-top

  try:
    g, d = models.build(model_config, shape)
    key = jax.random.PRNGKey(0)
    jax.eval_shape(
      lambda: models.init_variables(g, d, model_config.z_dim, shape, key, key)
    )
  except (TypeError, ValueError) as e:
    raise ConfigError(
      f'config.model ({model_config.name}) does not fit: {e}'
    ) from e


COMPUTE_DTYPES = ('float32', 'bfloat16')


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks names and sizes before any work starts; raises ConfigError."""
  # Imported here: registries import JAX/Flax, config files should not.
  from gan_jax import data, evaluate, losses, models  # pylint: disable=g-import-not-at-top

  check_name('loss', config.loss, losses.LOSSES)
  check_name('model', config.model.name, models.MODELS)
  check_name('dataset', config.data.name, data.DATASETS)
  _check_pack(config)
  check_name(
    'compute_dtype', config.get('compute_dtype', 'float32'), COMPUTE_DTYPES
  )
  _check_conditional(config, data.DATASETS[config.data.name])
  _check_model(config.model, data.DATASETS[config.data.name].shape)
  for key in (
    'batch_size',
    'num_models',
    'num_steps',
    'd_steps',
    'steps_per_dispatch',
    'log_every',
    'sample_every',
    'checkpoint_every',
  ):
    if config[key] < 1:
      raise ConfigError(f'config.{key} must be >= 1, got {config[key]}')
  for key in ('r1_gamma', 'd_weight_clip', 'ema_decay'):
    if config[key] < 0:
      raise ConfigError(f'config.{key} must be >= 0, got {config[key]}')
  if config.ema_decay >= 1:
    raise ConfigError(f'config.ema_decay must be < 1, got {config.ema_decay}')
  evaluate.check(config)
  penalised = losses.LOSSES[config.loss].penalty or config.r1_gamma > 0
  if penalised and config.model.d.get('norm') == 'batch':
    raise ConfigError(
      f'loss {config.loss!r} / r1_gamma penalise per-example input gradients, '
      'which BatchNorm in D mixes across the batch: set '
      "--config.model.d.norm=layer (Gulrajani et al. 2017) or 'none'."
    )
  for key in ('log_every', 'sample_every', 'checkpoint_every', 'num_steps'):
    if config[key] % config.steps_per_dispatch:
      raise ConfigError(
        f'config.{key}={config[key]} must be a multiple of '
        f'config.steps_per_dispatch={config.steps_per_dispatch}'
      )
