"""Sample quality of a generator, measured as the papers measure it.

  python -m gan_jax.evaluate --workdir=runs/dcgan [--step=N]
      [--metrics=fd,kid,pr] [--num_samples=50000] [--[no]standing_stats]
      [--parzen_grid=100]
re-evaluates a run's checkpoint (EMA weights when the run keeps them) and
appends the numbers with their protocol to `<workdir>/evaluations.jsonl`.

`config.eval.metrics` names metrics (comma-separated) of the registry
gan_jax.metrics.METRICS (a file of yours can add to it); the built-in ones
give these scalars:
  fd      fd                     Fréchet distance (Heusel et al. 2017)
  kid     kid, kid_std           KID, unbiased MMD^2 (Bińkowski et al. 2018)
  pr      precision, recall      k=3 (Kynkäänniemi et al. 2019)
  dc      density, coverage      k=5 (Naeem et al. 2020)
  is      is, is_std             exp E KL(p(y|x) || p(y)) (Salimans et al. 2016)
  parzen  parzen_ll, parzen_se, parzen_sigma   (Goodfellow et al. 2014)
  modes   modes, high_quality, reverse_kl      toy mixtures (Lin et al. 2018)
  cas     cas, real_accuracy     Classification Accuracy Score (Ravuri &
                                 Vinyals 2019), class-conditional G only
  augment augmented_accuracy, real_accuracy    generated data as augmentation
fd, kid, pr, dc and is use `config.eval.feature_net`: 'lenet' (the project's
classifier of MNIST-like data, metrics.classifier), 'inception' (the FID
Inception-v3, metrics.inception) or 'raw' (the data vectors: toy mixtures).
The reference set is the test split (images) or `num_samples` fresh draws
from the mixture (toy data). Every evaluation also records `real_data`: the
same metrics of `num_samples` real examples scored as if generated (the
first of the training split, or other fresh draws), the scale of the
protocol. For images it is computed once per protocol and cached in
eval.cache_dir beside the feature network (toy data: afresh, milliseconds);
cas and augment, which train classifiers, are left out of it. Parzen
follows Goodfellow et al. 2014, Table 1: pixels in [0, 1], sigma chosen on
train[50000:51000] from logspace(-1, 0, 10), mean +- standard error over
the test split; `config.eval.parzen_grid` (--parzen_grid) sets the number
of widths of that grid (10 in the released parzen_ll.py, 1.29x apart).
cas and augment train the project's LeNet (metrics.classifier, recipe seed
config.seed, `config.eval.cas_steps` steps) from scratch and report its
top-1 accuracy on the real test split: trained on the `num_samples`
generated samples with their balanced labels i mod K (cas), on the real
training set the GAN was trained on (real_accuracy, config.data's subset;
once per Evaluator), or on both, half of every batch from each
(augmented_accuracy).
"""

import hashlib
import json
import os
import sys
import time

from absl import app, flags, logging
import jax
import numpy as np

from gan_jax import batching, cache, checkpoint, data, metrics, registry, rundir
from gan_jax import console, generator, validate
from gan_jax.errors import Error
from gan_jax.metrics import stats

REFERENCE_SEED = 7654321  # toy reference draws, the same for every run
REAL_DATA = 'real_data'  # the cache folder of real-data scores
EVAL_SALT = 2345671  # evaluation noise: fold_in(PRNGKey(config.seed), salt)


class Evaluator:
  """`evaluator(samples) -> {scalar: float}` for the metrics a config names.

  samples: float32 (N, *shape), images in [-1, 1]. Building it loads the
  reference data and the feature network (training and caching the LeNet
  on first use) and prepares each metric (gan_jax.metrics: the attributes
  a metric's `prepare` reads); `protocol` records everything the numbers
  depend on, so numbers from different protocols are never compared.
  """

  def __init__(self, config):
    ev = config.eval
    self.names = metrics.names(ev)
    self.config, self._real_data, self.shared = config, None, {}
    self.dataset = dataset = data.DATASETS[config.data.name]
    self.protocol = {'num_samples': ev.num_samples, 'metrics': self.names}
    if dataset.kind == 'points':
      centres = dataset.load(config.data)['centres']
      key = jax.random.PRNGKey(REFERENCE_SEED)
      self.reference, *self.draws = [
        np.asarray(dataset.draw(centres, k, ev.num_samples)[0])
        for k in jax.random.split(key, 3)
      ]
      self.protocol['reference'] = (
        f'{ev.num_samples} draws of {config.data.name}'
      )
    else:
      test = dataset.read(config.data, 'test')[0]
      self.reference = data.symmetric_pixels(test)
      self.protocol['reference'] = f'{config.data.name} test ({len(test)})'
    self.features = None
    if any('features' in metrics.METRICS[n].needs for n in self.names):
      net = metrics.FEATURE_NETS[ev.feature_net]
      fn, self.protocol['feature_net'] = registry.resolve(net.load)(self)
      self.features = lambda x: batching.batched(fn, (x,), ev.batch_size)
      self.ref_features, self.ref_probs = self.features(self.reference)
      self.protocol['fd_sqrt'] = stats.SQRT_METHOD
    self._scorers = {
      n: registry.resolve(metrics.METRICS[n].prepare)(self) for n in self.names
    }

  def real_data(self) -> dict[str, float]:
    """The metrics (but cas, augment) of num_samples real examples scored
    as generated ones: the first of config.data's training split, or fresh
    mixture draws from fold_in(REFERENCE_SEED, 3). Images' are cached per
    protocol in eval.cache_dir/real_data/<hash>.json, a shared cache entry
    (gan_jax.cache: one of the processes asking at once computes it)."""
    if self._real_data is not None:
      return self._real_data
    names = [n for n in self.names if 'labels' not in metrics.METRICS[n].needs]
    n, data_config = self.config.eval.num_samples, self.config.data
    if self.dataset.kind == 'points':
      centres = self.dataset.load(data_config)['centres']
      key_real = jax.random.fold_in(jax.random.PRNGKey(REFERENCE_SEED), 3)
      real = np.asarray(self.dataset.draw(centres, key_real, n)[0])
      self._real_data = self._scores(real, names)
      return self._real_data
    which = {
      'data': {k: data_config.get(k) for k in ('name', 'train_split')},
      'protocol': self.protocol,
    }
    key = json.dumps(which, sort_keys=True, default=str)
    which = json.loads(key)  # as the cache file holds it
    folder = os.path.join(
      os.path.expanduser(self.config.eval.cache_dir), REAL_DATA
    )
    name = hashlib.sha1(key.encode()).hexdigest()[:16] + '.json'

    def read(path):  # a damaged cache file is computed again
      try:
        cached = rundir.read_json(path)
      except (OSError, ValueError):
        return None
      if isinstance(cached, dict) and cached.get('which') == which:
        return cached.get('metrics')
      return None

    def compute(path):
      images = self.dataset.read(data_config, data_config.train_split)[0]
      scores = self._scores(data.symmetric_pixels(images[:n]), names)
      if jax.process_index() == 0:
        rundir.write_json(path, {'which': which, 'metrics': scores})
      return scores

    self._real_data = cache.read_or_build(
      os.path.join(folder, name),
      read,
      compute,
      f'the real-data scores {name}',
      console.say,
      wait=jax.process_index() == 0,  # the others of a multi-host run: own copy
    )
    return self._real_data

  def _scores(self, samples, names) -> dict[str, float]:
    """self(samples) restricted to the metrics `names`."""
    names_all, self.names = self.names, names
    try:
      return self(samples)
    finally:
      self.names = names_all

  def __call__(self, samples: np.ndarray, labels=None) -> dict[str, float]:
    """Metrics of samples (N, *shape); labels (N,) for cas and augment."""
    labelled = [n for n in self.names if 'labels' in metrics.METRICS[n].needs]
    if labels is None and labelled:
      raise ValueError(f'{", ".join(labelled)} need the labels of the samples')
    scored = metrics.Scored(samples, labels)
    if self.features is not None:
      scored.features, scored.probs = self.features(samples)
    out = {}
    for name in self.names:
      out.update(self._scorers[name](scored))
    return {k: float(v) for k, v in out.items()}


def evaluate_state(
  evaluator: Evaluator, sampler: generator.Sampler, state, config
) -> dict:
  """Scores `config.eval.num_samples` samples of the run's generator.

  The noise is fold_in(PRNGKey(config.seed), EVAL_SALT) at every step, so
  numbers along a run differ by the generator only. Matrix products run at
  config.matmul_precision. Returns {'step', 'metrics', 'real_data'
  (Evaluator.real_data), 'protocol', 'seconds'}.
  """
  with jax.default_matmul_precision(config.matmul_precision):
    return _evaluate_state(evaluator, sampler, state, config)


def _evaluate_state(evaluator: Evaluator, sampler, state, config) -> dict:
  real_data = evaluator.real_data()  # once per protocol: not in 'seconds'
  t0 = time.perf_counter()
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), EVAL_SALT)
  samples, labels = sampler.draw(
    state, config.eval.num_samples, key, config.eval.batch_size
  )
  scores = evaluator(samples, labels)
  return {
    'step': int(state.step),
    'metrics': scores,
    'real_data': real_data,
    'protocol': {**evaluator.protocol, 'generator': sampler.weights(state)},
    'seconds': round(time.perf_counter() - t0, 2),
  }


def main(argv):
  """Re-evaluates a run directory; appends to evaluations.jsonl."""
  del argv
  f = flags.FLAGS
  if not f['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:
    config, gan, state = checkpoint.restore_run(f.workdir, f.step)
    for key in (
      'metrics',
      'num_samples',
      'feature_net',
      'inception_path',
      'parzen_grid',
    ):
      if f[key].value is not None:
        config.eval[key] = f[key].value
    for key in ('data_dir', 'manual_dir'):
      if f[key].value is not None:
        config.data[key] = f[key].value
    config.eval.cache_dir = f.cache_dir or config.eval.cache_dir
    config.eval.best_metric = ''  # a re-evaluation keeps no best checkpoint
    validate.check_eval(config)
    if f.trained_weights:  # the weights the EMA averages, not the EMA
      state = state.replace(g_ema=None)
    if f.standing_stats is not None:
      config.standing_stats = f.standing_stats
    sampler = generator.Sampler(gan.g, config)
    record = evaluate_state(Evaluator(config), sampler, state, config)
  except Error as e:
    sys.exit(f'error: {e}')
  rundir.append_evaluation(f.workdir, record)
  print(json.dumps(record, indent=2))


if __name__ == '__main__':
  flags.DEFINE_string('workdir', None, 'Run directory to evaluate.')
  flags.DEFINE_integer('step', None, 'Checkpoint step (default: newest).')
  flags.DEFINE_string('metrics', None, "e.g. 'fd,kid,pr,dc,is,parzen'.")
  flags.DEFINE_integer('num_samples', None, 'Generated samples to score.')
  flags.DEFINE_string('feature_net', None, 'lenet, inception or raw.')
  flags.DEFINE_integer(
    'parzen_grid', None, 'Parzen widths in logspace(-1, 0, n) (default 10).'
  )
  flags.DEFINE_string('inception_path', None, 'FID Inception .npz file.')
  flags.DEFINE_string('cache_dir', None, 'Where the LeNet is cached.')
  flags.DEFINE_string('data_dir', None, 'TFDS data_dir of this machine.')
  flags.DEFINE_string('manual_dir', None, 'Original dataset files.')
  flags.DEFINE_bool(
    'trained_weights',
    False,
    "Score G's trained weights (running BatchNorm statistics unless "
    '--standing_stats) in a run that keeps an EMA, instead of the EMA.',
  )
  flags.DEFINE_bool(
    'standing_stats',
    None,
    'Sample with standing BatchNorm statistics (config.standing_stats); '
    "default: the run's setting.",
  )
  flags.mark_flags_as_required(['workdir'])
  app.run(main, flags_parser=console.parse_flags)
