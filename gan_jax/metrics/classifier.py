"""A small LeNet-style classifier: the feature network for MNIST-like data.

Heusel et al. (2017) compute the Fréchet distance on Inception-v3 features;
for 28x28 grey digits a classifier trained on the dataset itself is the
usual stand-in (e.g. Lucic et al. 2018 for MNIST). Its 128-d penultimate
activations feed FD, KID and the k-NN metrics; its class probabilities feed
the Inception-Score-style score. It is trained by the project, on the
training split, deterministically from a seed, and cached with Orbax.

  x (B, 28, 28, 1) in [-1, 1]
   -> DownConv 32, ReLU (14x14) -> DownConv 64, ReLU (7x7)
   -> Dense 128, ReLU = features (B, 128) -> Dense K = logits (B, K)
The stride-2 convolutions are the GEMM-form layers of the GAN models.
"""

import dataclasses
import hashlib
import json
import logging
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from gan_jax import batching, cache, console, data
from gan_jax.models import layers

VERSION = 1  # bump when the architecture or training recipe changes
CLASSES = 10  # the MNIST-like datasets of the cached feature network
PARAMS, INFO = 'params', 'info.json'  # what a cached LeNet's folder holds


class LeNet(nn.Module):
  """(B, H, W, C) in [-1, 1] -> (features (B, 128), logits (B, classes))."""

  classes: int = 10

  @nn.compact
  def __call__(self, x):
    x = nn.relu(layers.DownConv(32)(x))
    x = nn.relu(layers.DownConv(64)(x))
    h = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
    return h, nn.Dense(self.classes)(h)


@dataclasses.dataclass(frozen=True)
class Recipe:
  """How the classifier is trained: Adam with cosine decay, random 2-px shifts.

  The default reaches > 99% test accuracy on MNIST (about 2 min, 2 CPU cores).
  """

  seed: int = 0
  steps: int = 3000
  batch_size: int = 128
  lr: float = 1e-3

  def tag(self, dataset: str) -> str:
    """A name that changes with anything that changes the trained weights."""
    text = json.dumps([VERSION, dataset, dataclasses.astuple(self)])
    return f'lenet_{dataset}_{hashlib.sha256(text.encode()).hexdigest()[:10]}'


def _shift(x, key, pixels=2):
  """Translates each image by up to `pixels` in each direction (zero fill)."""
  b, h, w, _ = x.shape
  pad = jnp.pad(
    x, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)), constant_values=-1
  )
  dy, dx = jax.random.randint(key, (2, b), 0, 2 * pixels + 1)
  crop = lambda img, i, j: jax.lax.dynamic_slice(img, (i, j, 0), (h, w, 1))
  return jax.vmap(crop)(pad, dy, dx)


def _scaled(images):
  """uint8 images -> float32 in [-1, 1]; float images are taken as such."""
  if images.dtype == jnp.uint8:
    return data.symmetric_pixels(images)
  return images.astype(jnp.float32)


def train(
  images, labels, recipe: Recipe, classes: int = 10, extra=None, desc=None
):
  """Trains LeNet on images (N, H, W, C) and int labels (N,).

  Images are uint8, or float in [-1, 1] (generated ones). With `extra` =
  (images', labels') a second set (e.g. generated data augmenting real
  data), every batch takes half its examples from each set. Batches are
  drawn with replacement from fold_in(PRNGKey(seed), step), so the weights
  depend on the data and the recipe only. Returns the parameter pytree.
  desc: names a progress bar of the steps (none when None).
  """
  model = LeNet(classes)
  sets = [(images, labels)] + ([extra] if extra is not None else [])
  sets = [(jnp.asarray(x), jnp.asarray(y)) for x, y in sets]
  sizes = [recipe.batch_size // len(sets)] * len(sets)
  sizes[0] += recipe.batch_size - sum(sizes)
  key = jax.random.PRNGKey(recipe.seed)
  params = model.init(key, jnp.zeros((1, *images.shape[1:])))['params']
  tx = optax.adam(optax.cosine_decay_schedule(recipe.lr, recipe.steps))
  opt = tx.init(params)

  def step(carry, i, sets):
    params, opt = carry
    k_idx, k_shift = jax.random.split(jax.random.fold_in(key, i))
    keys = [k_idx] if len(sets) == 1 else jax.random.split(k_idx, len(sets))
    parts = [
      (_scaled(x[idx]), y[idx])
      for (x, y), n, k in zip(sets, sizes, keys)
      for idx in [jax.random.randint(k, (n,), 0, len(y))]
    ]
    x = _shift(jnp.concatenate([p[0] for p in parts]), k_shift)
    y = jnp.concatenate([p[1] for p in parts])

    def loss_fn(p):
      logits = model.apply({'params': p}, x)[1]
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    grads = jax.grad(loss_fn)(params)
    updates, opt = tx.update(grads, opt)
    return (optax.apply_updates(params, updates), opt), None

  # Steps past recipe.steps (in the last chunk) have learning rate 0.
  chunk = min(100, recipe.steps)
  # The data are arguments, not constants folded into the program.
  run = jax.jit(
    lambda c, s, sets: jax.lax.scan(
      lambda c, i: step(c, i, sets), c, s + jnp.arange(chunk)
    )[0],
    donate_argnums=0,
  )
  carry = (params, opt)
  with console.bar(recipe.steps, desc=desc, shown=desc is not None) as progress:
    for start in range(0, recipe.steps, chunk):
      carry = run(carry, start, sets)
      progress.update(min(chunk, recipe.steps - start))
  return jax.block_until_ready(carry[0])


def apply_fn(classes: int = 10):
  """jit (params, x (B, H, W, C) in [-1, 1]) -> (features, probabilities)."""
  model = LeNet(classes)

  def fn(params, x):
    h, logits = model.apply({'params': params}, x)
    return h, jax.nn.softmax(logits)

  return jax.jit(fn)


def accuracy(params, images, labels, classes: int = 10, batch=1000) -> float:
  """Top-1 accuracy on images (N, H, W, C), uint8 or float in [-1, 1], and
  labels (N,)."""
  fn = apply_fn(classes)
  predicted = batching.batched(
    lambda x: fn(params, _scaled(jnp.asarray(x)))[1].argmax(-1),
    (images,),
    batch,
  )
  return float(np.mean(predicted == np.asarray(labels)))


def load_or_train(dataset, data_config, recipe: Recipe, cache_dir: str):
  """The classifier of `recipe` for `dataset`, from `cache_dir` or trained.

  dataset: an image entry of gan_jax.data.DATASETS. Returns (params, info)
  with info = {'name', 'test_accuracy', 'train_seconds', 'recipe'}. The
  folder `cache_dir/<tag>/` holds the weights (Orbax, params/) and
  info.json, and is a shared cache entry (gan_jax.cache): of processes
  asking at once one trains while the others wait, it is written in a
  private folder and published whole, and a folder that cannot be read is
  trained again.
  """
  tag = recipe.tag(dataset.name)
  folder = os.path.abspath(os.path.join(os.path.expanduser(cache_dir), tag))
  return cache.read_or_build(
    folder,
    lambda path: _read(path, tag, dataset.shape),
    lambda path: _train_into(path, tag, dataset, data_config, recipe),
    f'the feature network {tag}',
    console.say,
    wait=jax.process_index() == 0,  # the others of a multi-host run: own copy
  )


def _read(folder: str, tag: str, shape):
  """(params, info) of the LeNet cached in `folder`, or None when it is
  missing or cannot be read."""
  init = lambda: LeNet(CLASSES).init(
    jax.random.PRNGKey(0), jnp.zeros((1, *shape))
  )['params']
  try:
    with open(os.path.join(folder, INFO)) as f:
      info = json.load(f)
    if info['name'] != tag:
      raise ValueError(f'{INFO} names {info["name"]}')
    path = os.path.join(folder, PARAMS)
    params = ocp.StandardCheckpointer().restore(path, jax.eval_shape(init))
  except Exception as e:  # noqa: BLE001 (Orbax raises many types)
    if os.path.lexists(folder):
      logging.warning('the cached classifier %s is unreadable (%s)', folder, e)
    return None
  return params, info


def _train_into(folder: str, tag: str, dataset, data_config, recipe: Recipe):
  """Trains the LeNet of `recipe` and publishes it as `folder` (process 0)."""
  images, labels = dataset.read(data_config, 'train')
  t0 = time.perf_counter()
  with console.phase(
    f'training the feature network {tag} ({recipe.steps} steps; cached in '
    f'{folder} for later runs)'
  ):
    params = train(images, labels, recipe, CLASSES, desc='LeNet')
  seconds = time.perf_counter() - t0
  test_images, test_labels = dataset.read(data_config, 'test')
  info = {
    'name': tag,
    'test_accuracy': accuracy(params, test_images, test_labels, CLASSES),
    'train_seconds': round(seconds, 1),
    'recipe': dataclasses.asdict(recipe),
  }
  first = jax.process_index() == 0
  with cache.publishing(folder, publish=first) as private:
    if first:
      ckptr = ocp.StandardCheckpointer()
      ckptr.save(os.path.join(private, PARAMS), params)
      ckptr.wait_until_finished()
      with open(os.path.join(private, INFO), 'w') as f:
        json.dump(info, f, indent=2)
  return params, info


# --- as registered feature network and metrics (gan_jax.metrics) -------------


def load_features(ev):
  """The 'lenet' feature network: this module's LeNet of
  config.eval.classifier_steps steps, cached in config.eval.cache_dir."""
  ec = ev.config.eval
  params, info = load_or_train(
    ev.dataset, ev.config.data, Recipe(steps=ec.classifier_steps), ec.cache_dir
  )
  description = (
    f'{info["name"]} (LeNet, {info["recipe"]["steps"]} steps, test '
    f'accuracy {info["test_accuracy"]:.4f})'
  )
  apply = apply_fn()
  return jax.jit(lambda x: apply(params, x)), description


class _Scores:
  """What cas and augment share in one evaluator: the recipe, the real
  training and test sets, and real_accuracy (trained on first use)."""

  def __init__(self, ev):
    ec, dataset = ev.config.eval, ev.dataset
    self.recipe = Recipe(seed=ev.config.seed, steps=ec.cas_steps)
    self.classes = dataset.num_classes
    real = dataset.load(ev.config.data)
    self.real = real['images'], real['labels']
    self.test = dataset.read(ev.config.data, 'test')
    self._real_accuracy = None
    ev.protocol['cas'] = (
      f"LeNet of {ec.cas_steps} steps (seed: the run's) trained on the "
      f'{ec.num_samples} generated images (cas), the real training set of '
      f'config.data (real_accuracy) or half of each batch from both '
      f'(augmented_accuracy); accuracy on {ev.config.data.name} test'
    )

  def accuracy(self, images, labels, extra=None) -> float:
    """Test accuracy of the recipe's LeNet trained on (images, labels)."""
    params = train(images, labels, self.recipe, self.classes, extra)
    return accuracy(params, *self.test, self.classes)

  def real_accuracy(self) -> float:
    if self._real_accuracy is None:
      self._real_accuracy = self.accuracy(*self.real)
    return self._real_accuracy


def _shared(ev) -> _Scores:
  if 'classifier' not in ev.shared:
    ev.shared['classifier'] = _Scores(ev)
  return ev.shared['classifier']


def prepare_cas(ev):
  """'cas': accuracy of a LeNet trained on the labelled samples (Ravuri &
  Vinyals 2019), beside one trained on the real training set."""
  scores = _shared(ev)
  return lambda s: {
    'real_accuracy': scores.real_accuracy(),
    'cas': scores.accuracy(s.samples, s.labels),
  }


def prepare_augment(ev):
  """'augment': accuracy of a LeNet trained on real data with half of
  every batch from the labelled samples, beside real data alone."""
  scores = _shared(ev)
  return lambda s: {
    'real_accuracy': scores.real_accuracy(),
    'augmented_accuracy': scores.accuracy(
      *scores.real, extra=(s.samples, s.labels)
    ),
  }
