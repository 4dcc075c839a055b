"""Read-time checks of a config: names, sizes and combinations.

`validate(config)` runs before any work (data, workdir, compilation) and
raises errors.ConfigError naming the field to change. It imports the
registries (losses, models, datasets, metrics), which import nothing of it.
"""

import jax

from gan_jax import augment, data, losses, metrics, models, registry, sampling
from gan_jax import schemes, train_state
from gan_jax.errors import ConfigError, check_name

COMPUTE_DTYPES = ('float32', 'bfloat16')
MATMUL_PRECISIONS = ('default', 'tensorfloat32', 'float32')
POSITIVE = (
  'batch_size',
  'num_models',
  'num_steps',
  'd_steps',
  'steps_per_dispatch',
  'log_every',
  'sample_every',
  'checkpoint_every',
)
NON_NEGATIVE = (
  'r1_gamma',
  'r2_gamma',
  'd_weight_clip',
  'ema_decay',
  'ema_start',
  'consensus_gamma',
  'unroll_steps',
)
PER_DISPATCH = ('log_every', 'sample_every', 'checkpoint_every', 'num_steps')


def validate(config) -> None:
  """Checks names and sizes before any work starts; raises ConfigError."""
  losses.LOSSES[config.loss]  # the registries name the valid ones
  models.MODELS[config.model.name]
  schemes.SCHEMES[config.update_scheme]
  check_name('dataset', config.data.name, data.DATASETS)
  dataset = data.DATASETS[config.data.name]
  _check_pack(config)
  check_name('compute_dtype', config.compute_dtype, COMPUTE_DTYPES)
  check_name('matmul_precision', config.matmul_precision, MATMUL_PRECISIONS)
  _check_conditional(config, dataset)
  _check_model(config.model, dataset.shape)
  for key in POSITIVE:
    if config[key] < 1:
      raise ConfigError(f'config.{key} must be >= 1, got {config[key]}')
  for key in NON_NEGATIVE:
    if config[key] < 0:
      raise ConfigError(f'config.{key} must be >= 0, got {config[key]}')
  if config.ema_decay >= 1:
    raise ConfigError(f'config.ema_decay must be < 1, got {config.ema_decay}')
  _check_training(config)
  _check_data(config, dataset)
  _check_data_efficient(config, dataset)
  check_eval(config)
  penalised = (
    losses.LOSSES[config.loss].penalty
    or config.r1_gamma > 0
    or config.r2_gamma > 0
  )
  if penalised and config.model.d.get('norm') == 'batch':
    raise ConfigError(
      f'loss {config.loss!r} / r1_gamma / r2_gamma penalise per-example input gradients, '
      'which BatchNorm in D mixes across the batch: set '
      "--config.model.d.norm=layer (Gulrajani et al. 2017) or 'none'."
    )
  for key in PER_DISPATCH:
    if config[key] % config.steps_per_dispatch:
      raise ConfigError(
        f'config.{key}={config[key]} must be a multiple of '
        f'config.steps_per_dispatch={config.steps_per_dispatch}'
      )


def used(config) -> dict[str, list[str]]:
  """{registry kind: the names the config takes from it}."""
  return {
    'loss': [config.loss],
    'model': [config.model.name],
    'update_scheme': [config.update_scheme],
    'metric': metrics.names(config.eval),
    'feature_net': [config.eval.feature_net],
  }


def _check_training(config) -> None:
  """The update scheme, the optimizer and its schedules, the noise prior."""
  scheme = schemes.SCHEMES[config.update_scheme]
  if not scheme.d_steps and config.d_steps != 1:
    raise ConfigError(
      f'config.update_scheme={config.update_scheme} takes both steps from '
      f'one minibatch: set config.d_steps=1 (got {config.d_steps}).'
    )
  if config.shared_fake_pass and scheme.g_sees_updated_d(config):
    raise ConfigError(
      f'config.shared_fake_pass scores G by the pass of D that D learns '
      f'from; update_scheme={config.update_scheme} takes G through another '
      f'D (the updated or unrolled one): set shared_fake_pass=False or a '
      f'simultaneous scheme.'
    )
  noise = config.instance_noise
  if noise.std < 0 or noise.anneal_steps < 0:
    raise ConfigError(
      f'config.instance_noise.std and anneal_steps must be >= 0, got '
      f'{noise.std} and {noise.anneal_steps}'
    )
  check_name('z_prior', config.model.z_prior, sampling.PRIORS)
  optim = config.optim
  check_name('optim.name', optim.name, train_state.OPTIMIZERS)
  if optim.lr_decay <= 0 or optim.lr_min < 0:
    raise ConfigError(
      f'config.optim.lr_decay must be > 0 and lr_min >= 0, got '
      f'{optim.lr_decay} and {optim.lr_min}'
    )
  momenta = [optim.momentum, optim.momentum_final]
  if any(m is not None and not 0 <= m < 1 for m in momenta):
    raise ConfigError(
      f'config.optim.momentum and momentum_final must be in [0, 1), got '
      f'{momenta}'
    )
  start, end = optim.momentum_ramp
  if not 0 <= start <= end:
    raise ConfigError(
      f'config.optim.momentum_ramp=(start, end) needs 0 <= start <= end, '
      f'got {tuple(optim.momentum_ramp)}'
    )


def _check_data(config, dataset) -> None:
  """unit_range is for images, num_train for toy mixtures, epoch batching
  for a fixed training set whose positions fit int32."""
  if config.data.unit_range and dataset.kind != 'image':
    raise ConfigError(
      f'config.data.unit_range scales image pixels to [0, 1]; '
      f'{config.data.name} is not an image dataset: leave it False.'
    )
  if config.model.g.get('output_bias') == 'marginals' and (
    config.model.name != 'mlp' or dataset.kind != 'image'
  ):
    raise ConfigError(
      "config.model.g.output_bias='marginals' sets the MLP generator's "
      'output bias from image marginals: use it with model.name=mlp on '
      "an image dataset, or leave it 'zero'."
    )
  n = config.data.num_train
  if n < 0 or (n and dataset.kind != 'points'):
    raise ConfigError(
      f'config.data.num_train={n}: a fixed training set of N > 0 points is '
      'for the toy mixtures (image datasets use data.train_split); use 0.'
    )
  check_name('data.batching', config.data.batching, data.BATCHINGS)
  epochs = config.data.batching == 'epochs'
  if epochs and dataset.kind == 'points' and not n:
    raise ConfigError(
      f'config.data.batching=epochs needs a fixed training set; '
      f'{config.data.name} is drawn afresh at every step: set '
      "config.data.num_train=N > 0 or data.batching='uniform'."
    )
  positions = config.num_steps * config.d_steps * config.batch_size
  if epochs and positions >= 2**31:
    raise ConfigError(
      f'config.data.batching=epochs counts examples in int32: num_steps x '
      f'd_steps x batch_size = {positions:,} must be below 2^31; train in '
      "fewer steps or use data.batching='uniform'."
    )


def _check_data_efficient(config, dataset) -> None:
  """Augmentation, LeCam and consistency settings (gan_jax/augment.py)."""
  aug, lecam, cons = config.augment, config.lecam, config.consistency
  check_name('augment.method', aug.method, augment.METHODS)
  if data.needs_augment_keys(config) and dataset.kind != 'image':
    raise ConfigError(
      f'config.augment and config.consistency transform images; '
      f'{config.data.name} is not an image dataset: leave them off.'
    )
  augment.transform_of(aug)
  if aug.method == 'ada':
    if not 0 <= aug.ada_p <= 1 or not 0 <= aug.ada_target <= 1:
      raise ConfigError(
        f'config.augment.ada_p and ada_target must be in [0, 1], got '
        f'{aug.ada_p} and {aug.ada_target}'
      )
    if aug.ada_kimg <= 0 or aug.ada_interval < 1:
      raise ConfigError(
        f'config.augment.ada_kimg must be > 0 and ada_interval >= 1, got '
        f'{aug.ada_kimg} and {aug.ada_interval}'
      )
  if cons.real < 0 or cons.fake < 0:
    raise ConfigError(
      f'config.consistency.real and fake must be >= 0, got {cons.real} and '
      f'{cons.fake}'
    )
  augment.consistency_of(cons)
  if lecam.weight < 0 or not 0 <= lecam.decay < 1 or lecam.start < 0:
    raise ConfigError(
      f'config.lecam needs weight >= 0, 0 <= decay < 1 and start >= 0, got '
      f'{lecam.weight}, {lecam.decay} and {lecam.start}'
    )
  if config.eval.d_images < 0:
    raise ConfigError(
      f'config.eval.d_images must be >= 0, got {config.eval.d_images}'
    )


def _check_pack(config) -> None:
  """model.pack >= 1 divides the per-device batch (D packs per device)."""
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


def check_eval(config) -> None:
  """Raises ConfigError for eval settings that cannot run on this dataset."""
  ev = config.eval
  dataset = data.DATASETS[config.data.name]
  names = metrics.names(ev)
  chosen = {n: metrics.METRICS[n] for n in names}
  metrics.FEATURE_NETS[ev.feature_net]  # a known name even when unused
  for name, metric in chosen.items():
    if dataset.kind not in metric.kinds:
      what = 'counts mixture modes' if name == 'modes' else 'does not apply'
      raise ConfigError(
        f'metric {name!r} {what}; {config.data.name} is not a '
        f'{" or ".join(metric.kinds)} dataset: drop it from config.eval.metrics.'
      )
  needs = {need for m in chosen.values() for need in m.needs}
  if 'features' in needs:
    _check_features(config, dataset, chosen)
  labelled = [n for n, m in chosen.items() if 'labels' in m.needs]
  if labelled and not config.model.num_classes:
    raise ConfigError(
      f'metric(s) {", ".join(labelled)} train a classifier on generated '
      'images by class: they need an image dataset and a class-conditional '
      'model (config.model.num_classes > 0); drop them otherwise.'
    )
  if labelled and ev.cas_steps < 1:
    raise ConfigError(f'config.eval.cas_steps must be >= 1, got {ev.cas_steps}')
  scalars = [s for m in chosen.values() for s in m.scalars]
  if names and ev.best_metric and ev.best_metric not in scalars:
    ranked = [s for m in chosen.values() for s in m.lower + m.higher]
    raise ConfigError(
      f'config.eval.best_metric={ev.best_metric!r} is not computed by '
      f'config.eval.metrics={ev.metrics!r}; choose one of '
      f'{", ".join(s for s in scalars if s in ranked)}'
      " or '' for no best checkpoint."
    )
  if ev.parzen_grid < 2:
    raise ConfigError(
      f'config.eval.parzen_grid must be >= 2 (widths in logspace(-1, 0, n)), '
      f'got {ev.parzen_grid}'
    )
  if ev.num_samples < 10:
    raise ConfigError(
      f'config.eval.num_samples must be >= 10, got {ev.num_samples}'
    )
  if ev.every < 0 or (ev.every and ev.every % config.steps_per_dispatch):
    raise ConfigError(
      f'config.eval.every={ev.every} must be 0 (only at the end) or a '
      f'multiple of config.steps_per_dispatch={config.steps_per_dispatch}'
    )


def _check_features(config, dataset, chosen) -> None:
  """The feature network fits the data; a missing weights file fails now."""
  ev = config.eval
  net = metrics.FEATURE_NETS[ev.feature_net]
  if dataset.kind not in net.kinds:
    raise ConfigError(
      "toy data has no feature network: set config.eval.feature_net='raw'."
      if dataset.kind == 'points'
      else f'feature_net {ev.feature_net!r} reads no {dataset.kind} data.'
    )
  if net.shapes is not None and dataset.shape not in net.shapes:
    shapes = ' or '.join('x'.join(map(str, s)) for s in net.shapes)
    raise ConfigError(
      f'the {ev.feature_net} feature network is for {shapes} images, not '
      f"{config.data.name}: set config.eval.feature_net='inception'."
    )
  if net.check:
    registry.resolve(net.check)(config)
  for name, metric in chosen.items():
    if 'probs' in metric.needs and not net.probs:
      raise ConfigError(
        f'metric {name!r} needs a classifier: set config.eval.feature_net '
        f"to one that gives class probabilities ('lenet' or 'inception'), "
        f'or drop {name!r}.'
      )
