"""Config helpers: `key=value` argument parsing and read-time validation."""

import ml_collections


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


def check_name(kind: str, name: str, valid) -> None:
  """Raises ConfigError listing the valid names when `name` is not one."""
  if name not in valid:
    raise ConfigError(
      f'unknown {kind} {name!r}; valid: {", ".join(sorted(valid))}'
    )


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks names and sizes before any work starts; raises ConfigError."""
  # Imported here: registries import JAX/Flax, config files should not.
  from gan_jax import data, losses, models  # pylint: disable=g-import-not-at-top

  check_name('loss', config.loss, losses.LOSSES)
  check_name('model', config.model.name, models.MODELS)
  check_name('dataset', config.data.name, data.DATASETS)
  for key in (
    'batch_size',
    'num_steps',
    'd_steps',
    'steps_per_dispatch',
    'log_every',
    'sample_every',
    'checkpoint_every',
  ):
    if config[key] < 1:
      raise ConfigError(f'config.{key} must be >= 1, got {config[key]}')
  for key in ('log_every', 'sample_every', 'checkpoint_every', 'num_steps'):
    if config[key] % config.steps_per_dispatch:
      raise ConfigError(
        f'config.{key}={config[key]} must be a multiple of '
        f'config.steps_per_dispatch={config.steps_per_dispatch}'
      )
