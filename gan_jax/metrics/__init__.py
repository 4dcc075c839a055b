"""Sample-quality metrics and the feature networks they use.

This file is the metrics' registry (names only; no JAX): `config.eval.metrics`
names entries of METRICS, each giving the scalars listed.
"""

METRICS = {
  'fd': ('fd',),
  'kid': ('kid', 'kid_std'),
  'pr': ('precision', 'recall'),
  'dc': ('density', 'coverage'),
  'is': ('is', 'is_std'),
  'parzen': ('parzen_ll', 'parzen_se', 'parzen_sigma'),
  'modes': ('modes', 'high_quality', 'reverse_kl'),
  'cas': ('cas', 'real_accuracy'),
  'augment': ('augmented_accuracy', 'real_accuracy'),
}
LABEL_METRICS = ('cas', 'augment')  # need labelled samples
FEATURE_METRICS = ('fd', 'kid', 'pr', 'dc', 'is')  # use the feature network
FEATURE_NETS = ('lenet', 'inception', 'raw')
LOWER_IS_BETTER = ('fd', 'kid', 'reverse_kl')
HIGHER_IS_BETTER = (
  'precision',
  'recall',
  'density',
  'coverage',
  'is',
  'parzen_ll',
  'modes',
  'high_quality',
  'cas',
  'real_accuracy',
  'augmented_accuracy',
)


def names(eval_config) -> list[str]:
  """config.eval.metrics ('fd,kid') as a list; '' is no metric."""
  return [m.strip() for m in eval_config.metrics.split(',') if m.strip()]


def is_better(metric: str, value: float, best: float | None) -> bool:
  """Whether `value` of scalar `metric` beats `best` (None: nothing yet)."""
  if best is None:
    return True
  return value < best if metric in LOWER_IS_BETTER else value > best
