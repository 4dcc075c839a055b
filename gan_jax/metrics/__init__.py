"""Sample-quality metrics and the feature networks they use: the registries.

No JAX here: `config.eval.metrics` names entries of METRICS and
`config.eval.feature_net` one of FEATURE_NETS, each a record of what it
needs and gives; the code that computes it is named by a 'module:function'
path (or is the function itself) and imported on use by gan_jax.evaluate.

A metric's `prepare(ev)` runs once per evaluator and returns its scorer,
`score(s) -> {scalar: float}`. `ev` (gan_jax.evaluate.Evaluator) holds
`config`, `dataset` (the data.DATASETS entry), `reference` (float32
(N, *shape) in [-1, 1]: the test split, or N fresh mixture draws),
`draws` (toy data: two more such draws, validation and test), with a
feature network `ref_features` (N, d) and `ref_probs` (N, K) or None,
`protocol` (a dict the metric adds what its numbers depend on to) and
`shared` (a dict for what several metrics prepare once). `s` (`Scored`)
holds `samples` (M, *shape) in [-1, 1], their `labels` (M,) or None, and
with a feature network their `features` (M, d) and `probs` (M, K) or None.
A researcher's metric is one `METRICS.register(name, Metric(...))`.
"""

import dataclasses
from collections.abc import Callable
from typing import Any

from gan_jax import registry


@dataclasses.dataclass(frozen=True)
class Metric:
  """One metric. scalars: the numbers it returns; lower / higher: those of
  them that rank runs (lower or higher is better; the rest, such as
  spreads, rank nothing). needs: 'features' (the feature network's
  features), 'probs' (its class probabilities), 'labels' (labelled samples
  of a class-conditional image model; such metrics train classifiers and
  are left out of the real-data scores). kinds: the dataset kinds it
  applies to ('image', 'points'). For reports: units {scalar: its unit
  and scale}, errors {scalar: the scalar that is its own spread (drawn
  as its error bars, never as a metric)}, family (metrics drawn in one
  figure; default the entry's name)."""

  prepare: Callable | str
  scalars: tuple[str, ...]
  lower: tuple[str, ...] = ()
  higher: tuple[str, ...] = ()
  needs: tuple[str, ...] = ()
  kinds: tuple[str, ...] = ('image', 'points')
  units: dict = dataclasses.field(default_factory=dict)
  errors: dict = dataclasses.field(default_factory=dict)
  family: str = ''


@dataclasses.dataclass(frozen=True)
class FeatureNet:
  """A feature network: `load(ev) -> (fn, description)`, fn mapping images
  (N, *shape) in [-1, 1] to (features (N, d), class probabilities (N, K)
  or None). probs: whether it gives class probabilities. kinds: dataset
  kinds; shapes: the image shapes it reads (None: any). check(config):
  raises an errors.Error before any work when it cannot run (a missing
  weights file), or None."""

  load: Callable | str
  probs: bool = False
  kinds: tuple[str, ...] = ('image',)
  shapes: tuple | None = None
  check: Callable | str | None = None


@dataclasses.dataclass
class Scored:
  """What a scorer reads: see the module docstring."""

  samples: Any
  labels: Any = None
  features: Any = None
  probs: Any = None


METRICS = registry.Registry('metric')
FEATURE_NETS = registry.Registry('feature_net')

_SQUARED = 'squared feature units'
_FRACTION = 'fraction, 0 to 1'
_ACCURACY = 'test accuracy, 0 to 1'
_BUILTIN = {
  'fd': Metric(
    'gan_jax.metrics.stats:prepare_fd',
    ('fd',),
    ('fd',),
    needs=('features',),
    units={'fd': _SQUARED},
    family='distances',
  ),
  'kid': Metric(
    'gan_jax.metrics.stats:prepare_kid',
    ('kid', 'kid_std'),
    ('kid',),
    needs=('features',),
    units={'kid': _SQUARED + ', unscaled'},
    errors={'kid': 'kid_std'},
    family='distances',
  ),
  'pr': Metric(
    'gan_jax.metrics.manifold:prepare_pr',
    ('precision', 'recall'),
    higher=('precision', 'recall'),
    needs=('features',),
    units={'precision': _FRACTION, 'recall': _FRACTION},
    family='manifold',
  ),
  'dc': Metric(
    'gan_jax.metrics.manifold:prepare_dc',
    ('density', 'coverage'),
    higher=('density', 'coverage'),
    needs=('features',),
    units={'density': 'ratio, 1 for real data', 'coverage': _FRACTION},
    family='manifold',
  ),
  'is': Metric(
    'gan_jax.metrics.stats:prepare_is',
    ('is', 'is_std'),
    higher=('is',),
    needs=('features', 'probs'),
    units={'is': 'score, 1 to classes'},
    errors={'is': 'is_std'},
  ),
  'parzen': Metric(
    'gan_jax.metrics.parzen:prepare',
    ('parzen_ll', 'parzen_se', 'parzen_sigma'),
    higher=('parzen_ll',),
    units={'parzen_ll': 'nats', 'parzen_sigma': 'pixel scale'},
    errors={'parzen_ll': 'parzen_se'},
  ),
  'modes': Metric(
    'gan_jax.metrics.modes:prepare',
    ('modes', 'high_quality', 'reverse_kl'),
    ('reverse_kl',),
    ('modes', 'high_quality'),
    kinds=('points',),
    units={
      'modes': 'count',
      'high_quality': '% of samples',
      'reverse_kl': 'nats',
    },
  ),
  'cas': Metric(
    'gan_jax.metrics.classifier:prepare_cas',
    ('cas', 'real_accuracy'),
    higher=('cas', 'real_accuracy'),
    needs=('labels',),
    kinds=('image',),
    units={'cas': _ACCURACY, 'real_accuracy': _ACCURACY},
    family='classifiers',
  ),
  'augment': Metric(
    'gan_jax.metrics.classifier:prepare_augment',
    ('augmented_accuracy', 'real_accuracy'),
    higher=('augmented_accuracy', 'real_accuracy'),
    needs=('labels',),
    kinds=('image',),
    units={'augmented_accuracy': _ACCURACY, 'real_accuracy': _ACCURACY},
    family='classifiers',
  ),
}
for _name, _metric in _BUILTIN.items():
  METRICS.register(_name, _metric)

FEATURE_NETS.register(
  'lenet',
  FeatureNet(
    'gan_jax.metrics.classifier:load_features', True, shapes=((28, 28, 1),)
  ),
)
FEATURE_NETS.register(
  'inception',
  FeatureNet(
    'gan_jax.metrics.inception:load_features',
    True,
    check='gan_jax.metrics.inception:check_config',
  ),
)
FEATURE_NETS.register(
  'raw',
  FeatureNet('gan_jax.metrics.stats:raw_features', kinds=('image', 'points')),
)


def names(eval_config) -> list[str]:
  """config.eval.metrics ('fd,kid') as a list; '' is no metric."""
  return [m.strip() for m in eval_config.metrics.split(',') if m.strip()]


def direction(scalar: str) -> str | None:
  """'lower' or 'higher' (is better) for a ranked scalar of a registered
  metric, None for one that ranks nothing."""
  for metric in METRICS.values():
    if scalar in metric.lower:
      return 'lower'
    if scalar in metric.higher:
      return 'higher'
  return None


def _entry(scalar: str) -> tuple[str, Metric] | None:
  """(name, Metric) of the registered metric that gives `scalar`."""
  return next(((n, m) for n, m in METRICS.items() if scalar in m.scalars), None)


def unit(scalar: str) -> str:
  """The unit and scale its metric states for `scalar` ('' if none)."""
  found = _entry(scalar)
  return found[1].units.get(scalar, '') if found else ''


def family(scalar: str) -> str:
  """The figure `scalar` is drawn in: its metric's family, else its name
  (the scalar itself for an unregistered one)."""
  found = _entry(scalar)
  return (found[1].family or found[0]) if found else scalar


def error_keys() -> dict[str, str]:
  """{scalar: the scalar that is its own spread} over every metric."""
  return {k: e for m in METRICS.values() for k, e in m.errors.items()}


def is_better(metric: str, value: float, best: float | None) -> bool:
  """Whether `value` of scalar `metric` beats `best` (None: nothing yet)."""
  if best is None:
    return True
  return value < best if direction(metric) == 'lower' else value > best
