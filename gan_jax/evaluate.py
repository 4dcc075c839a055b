"""Sample quality of a generator, measured as the papers measure it.

  python -m gan_jax.evaluate --workdir=runs/dcgan [--step=N]
      [--metrics=fd,kid,pr] [--num_samples=50000] [--[no]standing_stats]
      [--parzen_grid=100]
re-evaluates a run's checkpoint (EMA weights when the run keeps them) and
appends the numbers with their protocol to `<workdir>/evaluations.jsonl`.

`config.eval.metrics` names metrics (comma-separated); each gives scalars:
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

from gan_jax import batching, checkpoint, data, metrics, rundir, sampling
from gan_jax import train_state, validate
from gan_jax.errors import Error
from gan_jax.metrics import classifier, inception, manifold, modes, parzen
from gan_jax.metrics import stats

# Goodfellow et al. 2014: parzen_ll.py picks sigma on the first 1,000 images
# (--limit_size) of the validation split train[50000:60000].
PARZEN_VALID = 'train[50000:51000]'
REFERENCE_SEED = 7654321  # toy reference draws, the same for every run
REAL_DATA = 'real_data'  # the cache folder of real-data scores
EVAL_SALT = 2345671  # evaluation noise: fold_in(PRNGKey(config.seed), salt)


class Evaluator:
  """`evaluator(samples) -> {scalar: float}` for the metrics a config names.

  samples: float32 (N, *shape), images in [-1, 1]. Building it loads the
  reference data and the feature network (training and caching the LeNet
  on first use); `protocol` records everything the numbers depend on, so
  numbers from different protocols are never compared.
  """

  def __init__(self, config):
    ev = config.eval
    self.names = metrics.names(ev)
    self.batch = ev.batch_size
    self.dataset = dataset = data.DATASETS[config.data.name]
    self.protocol = {'num_samples': ev.num_samples, 'metrics': self.names}
    self.config, self._real_data = config, None
    if dataset.kind == 'points':
      centres = dataset.load(config.data)['centres']
      key = jax.random.PRNGKey(REFERENCE_SEED)
      draws = [
        np.asarray(dataset.draw(centres, k, ev.num_samples)[0])
        for k in jax.random.split(key, 3)
      ]
      self.reference, parzen_valid, parzen_test = draws
      self.centres = centres
      self.protocol['reference'] = (
        f'{ev.num_samples} draws of {config.data.name}'
      )
    else:
      test = dataset.read(config.data, 'test')[0]
      self.reference = test.astype(np.float32) / 127.5 - 1.0
      self.protocol['reference'] = f'{config.data.name} test ({len(test)})'
      if 'parzen' in self.names:
        parzen_valid = dataset.read(config.data, PARZEN_VALID)[0]
        parzen_valid = _flat(parzen_valid.astype(np.float32) / 255.0)
        parzen_test = _flat(test.astype(np.float32) / 255.0)
    if 'parzen' in self.names:
      self.parzen_valid, self.parzen_test = parzen_valid, parzen_test
      self.parzen_sigmas = parzen.sigma_grid(ev.parzen_grid)
      valid = PARZEN_VALID if dataset.kind == 'image' else 'fresh draws'
      self.protocol['parzen'] = (
        f'sigma from logspace(-1, 0, {ev.parzen_grid}) on {valid} '
        f'({len(parzen_valid)}), '
        f'log-likelihood of {len(parzen_test)} test points'
      )
    if any(n in metrics.FEATURE_METRICS for n in self.names):
      self.features = self._feature_fn(config)
      ref_feat, ref_probs = self.features(self.reference)
      self.ref_features = ref_feat
      self.ref_stats = stats.gaussian_stats(ref_feat)
      if 'is' in self.names:
        self.protocol['reference_is'] = stats.classifier_score(ref_probs)[0]
      self.protocol['fd_sqrt'] = stats.SQRT_METHOD
    if 'kid' in self.names:
      self.protocol['kid'] = 'cubic kernel, 100 subsets of 1000'
    if 'modes' in self.names:
      self.protocol['modes'] = (
        f'high quality: within 3 std ({dataset.std}) of the nearest mode'
      )
    if any(n in metrics.LABEL_METRICS for n in self.names):
      self.recipe = classifier.Recipe(seed=config.seed, steps=ev.cas_steps)
      self.real_train = dataset.load(config.data)
      self.test = dataset.read(config.data, 'test')
      self.real_accuracy = None  # trained on first use
      self.protocol['cas'] = (
        f"LeNet of {ev.cas_steps} steps (seed: the run's) trained on the "
        f'{ev.num_samples} generated images (cas), the real training set of '
        f'config.data (real_accuracy) or half of each batch from both '
        f'(augmented_accuracy); accuracy on {config.data.name} test'
      )

  def _feature_fn(self, config):
    """(N, *shape) -> (features (N, d), class probabilities (N, K) | None)."""
    ev = config.eval
    if ev.feature_net == 'raw':
      self.protocol['feature_net'] = 'raw data vectors'
      return lambda x: (x.reshape(len(x), -1), None)
    if ev.feature_net == 'inception':
      params = inception.load_params(ev.inception_path)
      self.protocol['feature_net'] = (
        f'FID Inception-v3 pool3 ({os.path.basename(ev.inception_path)})'
      )
      fn = jax.jit(lambda x: inception.features(params, x))
    else:
      recipe = classifier.Recipe(steps=ev.classifier_steps)
      params, info = classifier.load_or_train(
        self.dataset, config.data, recipe, ev.cache_dir
      )
      self.protocol['feature_net'] = (
        f'{info["name"]} (LeNet, {info["recipe"]["steps"]} steps, test '
        f'accuracy {info["test_accuracy"]:.4f})'
      )
      apply = classifier.apply_fn()
      fn = jax.jit(lambda x: apply(params, x))
    return lambda x: batching.batched(fn, (x,), self.batch)

  def real_data(self) -> dict[str, float]:
    """The metrics (but cas, augment) of num_samples real examples scored
    as generated ones: the first of config.data's training split, or fresh
    mixture draws from fold_in(REFERENCE_SEED, 3). Images' are cached per
    protocol in eval.cache_dir/real_data/<hash>.json."""
    if self._real_data is not None:
      return self._real_data
    names = [n for n in self.names if n not in metrics.LABEL_METRICS]
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
    path = os.path.join(folder, hashlib.sha1(key.encode()).hexdigest()[:16])
    try:
      cached = rundir.read_json(path + '.json')
    except ValueError:  # a damaged cache file is computed again
      cached = None
    if cached is not None and cached.get('which') == which:
      self._real_data = cached['metrics']
      return self._real_data
    images = self.dataset.read(data_config, data_config.train_split)[0]
    scores = self._scores(images[:n].astype(np.float32) / 127.5 - 1.0, names)
    if jax.process_index() == 0:
      os.makedirs(folder, exist_ok=True)
      rundir.write_json(path + '.json', {'which': which, 'metrics': scores})
    self._real_data = scores
    return scores

  def _scores(self, samples, names) -> dict[str, float]:
    """self(samples) restricted to the metrics `names`."""
    names_all, self.names = self.names, names
    try:
      return self(samples)
    finally:
      self.names = names_all

  def _classifier_accuracy(self, images, labels, extra=None) -> float:
    """Test accuracy of self.recipe's LeNet trained on (images, labels)."""
    k = self.dataset.num_classes
    params = classifier.train(images, labels, self.recipe, k, extra)
    return classifier.accuracy(params, *self.test, k)

  def __call__(self, samples: np.ndarray, labels=None) -> dict[str, float]:
    """Metrics of samples (N, *shape); labels (N,) for cas and augment."""
    if labels is None and any(n in metrics.LABEL_METRICS for n in self.names):
      raise ValueError('cas and augment need the labels of the samples')

    out = {}
    if any(n in metrics.FEATURE_METRICS for n in self.names):
      feats, probs = self.features(samples)
    for name in self.names:
      if name == 'fd':
        out['fd'] = stats.frechet_distance(
          *stats.gaussian_stats(feats), *self.ref_stats
        )
      elif name == 'kid':
        out['kid'], out['kid_std'] = stats.kid(self.ref_features, feats)
      elif name == 'pr':
        out['precision'], out['recall'] = manifold.precision_recall(
          self.ref_features, feats, k=3
        )
      elif name == 'dc':
        out['density'], out['coverage'] = manifold.density_coverage(
          self.ref_features, feats, k=5
        )
      elif name == 'is':
        out['is'], out['is_std'] = stats.classifier_score(probs)
      elif name == 'parzen':
        points = samples
        if self.dataset.kind == 'image':
          points = _flat((samples + 1.0) / 2.0)
        out.update(
          parzen.evaluate(
            points, self.parzen_valid, self.parzen_test, self.parzen_sigmas
          )
        )
      elif name == 'modes':
        out.update(modes.mode_coverage(samples, self.centres, self.dataset.std))
      elif name in metrics.LABEL_METRICS:
        real = self.real_train['images'], self.real_train['labels']
        if self.real_accuracy is None:
          self.real_accuracy = self._classifier_accuracy(*real)
        out['real_accuracy'] = self.real_accuracy
        if name == 'cas':
          out['cas'] = self._classifier_accuracy(samples, labels)
        else:
          out['augmented_accuracy'] = self._classifier_accuracy(
            *real, extra=(samples, labels)
          )
    return {k: float(v) for k, v in out.items()}


def _flat(images):
  """(N, *shape) -> (N, prod(shape)) float32."""
  return images.reshape(len(images), -1).astype(np.float32)


def evaluate_state(evaluator: Evaluator, g, state, config) -> dict:
  """Scores `config.eval.num_samples` samples of the run's generator.

  The noise is fold_in(PRNGKey(config.seed), EVAL_SALT) at every step, so
  numbers along a run differ by the generator only. Matrix products run at
  config.matmul_precision. Returns {'step', 'metrics', 'real_data'
  (Evaluator.real_data), 'protocol', 'seconds'}.
  """
  with jax.default_matmul_precision(config.matmul_precision):
    return _evaluate_state(evaluator, g, state, config)


def _evaluate_state(evaluator: Evaluator, g, state, config) -> dict:
  real_data = evaluator.real_data()  # once per protocol: not in 'seconds'
  t0 = time.perf_counter()
  key = jax.random.fold_in(jax.random.PRNGKey(config.seed), EVAL_SALT)
  samples = sampling.generate(
    g,
    train_state.generator_variables(
      g, state, config.model.z_dim, config.model.z_prior, config.standing_stats
    ),
    config.model.z_dim,
    config.eval.num_samples,
    key,
    config.eval.batch_size,
    config.model.num_classes,
    config.model.z_prior,
  )
  samples = data.to_symmetric(samples, config.data)
  labels = sampling.class_labels(len(samples), config.model.num_classes)
  scores = evaluator(samples, labels)
  generator = 'EMA weights' if state.g_ema is not None else 'trained weights'
  if state.g_ema is None and train_state.uses_standing_stats(
    state, config.standing_stats
  ):
    generator += ' with standing BatchNorm statistics'
  return {
    'step': int(state.step),
    'metrics': scores,
    'real_data': real_data,
    'protocol': {**evaluator.protocol, 'generator': generator},
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
    record = evaluate_state(Evaluator(config), gan.g, state, config)
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
  app.run(main)
