"""Classification Accuracy Score and the augmentation metric, on real MNIST.

- CAS (Ravuri & Vinyals 2019) on "generated" data that is really MNIST
  training data (other examples than the 10% subset the baseline classifier
  sees) equals the real-data baseline within 2 points of accuracy; on
  uniform noise with random labels it is near chance (< 20%, chance 10%),
  while the baseline stays above 90% (a 150-step recipe).
- augment: real data plus correctly labelled real "generated" data is no
  worse than real data alone (within 1 point); real data plus mislabelled
  "generated" data (label y + 1) costs over 10 points.
- The classifier's mixed batches draw half their examples from each set:
  a second set of one class only pulls the predictions towards that class.
- Refusals: cas and augment need a class-conditional model and labels.
"""

import numpy as np
import pytest

from gan_jax import data, evaluate
from gan_jax import errors, validate
from gan_jax.metrics import classifier
from experiments import mnist_dcgan

N = 1000  # "generated" samples


def _config(mnist_dirs, lenet_cache, metrics):
  c = mnist_dcgan.get_config('smoke')
  c.data.manual_dir, c.data.data_dir = mnist_dirs
  c.data.train_fraction = 0.1  # the baseline's real training set: 6,000
  c.model.num_classes = 10
  c.eval.cache_dir = lenet_cache
  c.eval.metrics = metrics
  c.eval.num_samples = N
  c.eval.best_metric = ''
  c.eval.cas_steps = 150
  validate.validate(c)
  return c


def _other_real(c):
  """N labelled training images outside the baseline's 10% subset."""
  images, labels = data.DATASETS['mnist'].read(c.data, 'train')
  used = np.zeros(len(labels), bool)
  used[data.stratified_subset(labels, 0.1, c.data.subset_seed)] = True
  rest = np.flatnonzero(~used)[:N]
  return images[rest].astype(np.float32) / 127.5 - 1.0, labels[rest]


def test_cas_of_real_data_is_the_baseline_and_of_noise_chance(
  mnist_dirs, lenet_cache
):
  c = _config(mnist_dirs, lenet_cache, 'cas')
  ev = evaluate.Evaluator(c)
  x, y = _other_real(c)
  real = ev(x, y)
  assert real['real_accuracy'] > 0.9
  assert abs(real['cas'] - real['real_accuracy']) < 0.02
  rng = np.random.default_rng(0)
  noise = rng.uniform(-1, 1, x.shape).astype(np.float32)
  chance = ev(noise, rng.integers(0, 10, N))
  assert chance['real_accuracy'] == real['real_accuracy']  # trained once
  assert chance['cas'] < 0.2


def test_augment_with_real_and_with_noise(mnist_dirs, lenet_cache):
  c = _config(mnist_dirs, lenet_cache, 'augment')
  ev = evaluate.Evaluator(c)
  x, y = _other_real(c)
  good = ev(x, y)
  assert good['augmented_accuracy'] > good['real_accuracy'] - 0.01
  bad = ev(x, (y + 1) % 10)  # a G that ignores the label it is given
  assert bad['augmented_accuracy'] < good['real_accuracy'] - 0.1


def test_mixed_batches_take_half_from_each_set(mnist_dirs):
  """Second set: blank images all labelled 3 -> blank test images read 3,
  while real digits are still classified from the first set."""
  manual_dir, data_dir = mnist_dirs
  dc = {'data_dir': data_dir, 'manual_dir': manual_dir}
  import ml_collections  # pylint: disable=g-import-not-at-top

  dc = ml_collections.ConfigDict(dc)
  images, labels = data.DATASETS['mnist'].read(dc, 'train[:3000]')
  blank = -np.ones((100, 28, 28, 1), np.float32)
  recipe = classifier.Recipe(steps=200)
  params = classifier.train(
    images, labels, recipe, extra=(blank, np.full(100, 3))
  )
  probs = classifier.apply_fn()(params, blank[:4])[1]
  assert np.all(np.argmax(probs, -1) == 3)
  test, test_labels = data.DATASETS['mnist'].read(dc, 'test[:1000]')
  assert classifier.accuracy(params, test, test_labels) > 0.85


def test_label_metrics_need_a_conditional_model(mnist_dirs, lenet_cache):
  c = _config(mnist_dirs, lenet_cache, 'cas')
  c.model.num_classes = 0
  with pytest.raises(errors.ConfigError, match='class-conditional'):
    validate.check_eval(c)
  c = _config(mnist_dirs, lenet_cache, 'augment')
  ev = evaluate.Evaluator(c)
  with pytest.raises(ValueError, match='labels'):
    ev(np.zeros((N, 28, 28, 1), np.float32))
