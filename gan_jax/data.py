"""Datasets: one array put on every device, and pure per-step batch samplers.

Each entry of `DATASETS` has `shape` (one example), `kind` ('image' or
'points'), `num_classes` K, `load(data_config)` -> the host source (a pytree
of arrays) to replicate, `sample(source, key, batch_size)` -> (float32
(batch_size, *shape), int32 labels (batch_size,) in {0..K-1}), jittable,
and, where the source is a fixed set of N examples, `take(source, idx)`:
the examples at int32 indices `idx` (any shape), as `sample` scales them.
Image labels are the dataset's classes, toy labels the mixture component.

Image datasets come from their TFDS builders, prepared once as array_record
(readable without TensorFlow), which shuffles the examples when it writes
them. With `manual_dir` set, TFDS takes the original files from that folder
instead of downloading them; if the folder holds a `SHA256SUMS` file, the
files are validated against it rather than against the upstream checksums
TFDS ships (a re-compressed copy has other .gz hashes). 'mnist_original'
reads the four MNIST idx files of `manual_dir` itself, in their order (as
pylearn2 did), validated against the same SHA256SUMS.

Toy sets are equal-weight mixtures of isotropic 2-D Gaussians (no files).

Batching (`data.batching`): 'uniform' draws each example of a batch
independently, with replacement (`sample`); 'epochs' takes the batches in
order from a stream of shuffled epochs without replacement
(`epoch_indices`, then `take`).
"""

import dataclasses
import gzip
import hashlib
import itertools
import math
import os
import tempfile
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import cache, config as config_lib, console, sampling
from gan_jax.errors import ConfigError, DataError

BATCHINGS = ('uniform', 'epochs')
# fold_in(rng, EPOCH_FOLD) keys the epoch permutations: above every step
# index, so no step key fold_in(rng, step) equals it.
EPOCH_FOLD = 2**31 - 1


def manual_sums(manual_dir: str, names, what: str) -> dict[str, str] | None:
  """{name: SHA-256} of the files `names` from `manual_dir`/SHA256SUMS, or
  None when the folder has no SHA256SUMS. DataError when one of `names` is
  missing or not listed (`what`: the dataset, for the message)."""
  sums_path = os.path.join(manual_dir, 'SHA256SUMS')
  if not os.path.exists(sums_path):
    return None
  with open(sums_path) as f:
    sums = {
      name.lstrip('*'): digest
      for digest, name in (line.split() for line in f if line.strip())
    }
  for name in names:
    path = os.path.join(manual_dir, name)
    if name not in sums or not os.path.exists(path):
      raise DataError(
        f'{path} is missing or not listed in {sums_path}. '
        f'Put the original {what} files ({", ".join(names)}) in {manual_dir}.'
      )
  return {name: sums[name] for name in names}


def _local_url_infos(builder_cls, manual_dir):
  """UrlInfos that validate the files in `manual_dir` against its SHA256SUMS."""
  from tensorflow_datasets.core.download import checksums  # pylint: disable=g-import-not-at-top

  names = [os.path.basename(url) for url in builder_cls.url_infos]
  sums = manual_sums(manual_dir, names, builder_cls.name)
  if sums is None:
    return None
  return {
    url: checksums.UrlInfo(
      size=os.path.getsize(os.path.join(manual_dir, name)),
      checksum=sums[name],
      filename=name,
    )
    for url, name in zip(builder_cls.url_infos, names)
  }


def prepare(name: str, data_dir: str | None, manual_dir: str | None) -> None:
  """Prepares TFDS dataset `name` (needs TensorFlow) unless already done.

  Archives are extracted into a temporary folder: TFDS names extracted files
  after the archive only, so a kept extraction of a bad manual file would be
  reused after the file is fixed. A failed run leaves nothing that counts as
  prepared (TFDS writes the dataset under a temporary name, then renames it).
  Processes preparing one dataset into one data_dir at once take turns
  (gan_jax.cache.lock): one prepares, the others then find it prepared
  (TFDS's rename onto a folder another process published fails).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  builder_cls = tfds.builder_cls(name)
  if manual_dir:
    if not os.path.isdir(manual_dir):
      raise DataError(
        f'data.manual_dir={manual_dir} is not a folder. Create it and put '
        f'the original {name} files in it, or unset data.manual_dir to let '
        'TFDS download them.'
      )
    infos = _local_url_infos(builder_cls, manual_dir)
    if infos is not None:
      builder_cls = type(
        builder_cls.__name__,
        (builder_cls,),
        {'url_infos': infos, 'name': builder_cls.name},
        skip_registration=True,
      )
  builder = builder_cls(data_dir=data_dir, file_format='array_record')
  with cache.lock(builder.data_dir, f'the TFDS {name} dataset', console.say):
    if not os.path.isdir(builder.data_dir):  # else prepared meanwhile
      _download_and_prepare(builder, name, manual_dir)


def _download_and_prepare(builder, name: str, manual_dir) -> None:
  """`prepare`'s work, holding the lock."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  try:
    with (
      console.phase(
        f'preparing {name} into {builder.data_dir} (once: later runs read '
        'it from there)'
      ),
      tempfile.TemporaryDirectory(prefix=f'tfds-{name}-') as extract_dir,
    ):
      builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
          manual_dir=manual_dir, extract_dir=extract_dir
        )
      )
  except Exception as e:  # TFDS raises many types; all mean the same here.
    where = (
      f'in data.manual_dir={manual_dir}'
      if manual_dir
      else 'downloadable (no network?); set data.manual_dir to a folder '
      'holding them'
    )
    raise DataError(
      f'could not prepare TFDS {name!r} into {builder.data_dir}: the '
      f'original files must be {where}. Cause: '
      f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
    ) from e


def _split_window(split: str) -> tuple[str, slice]:
  """'train[50000:51000]' -> ('train', slice(50000, 51000)); 'test' -> ('test',
  slice(None, None))."""
  name, _, window = split.partition('[')
  start, _, stop = window.rstrip(']').partition(':')
  return name, slice(int(start) if start else None, int(stop) if stop else None)


@dataclasses.dataclass(frozen=True)
class Images:
  """Labelled images uint8 of `shape` in splits read by `_read`; `name` is
  the dataset's (and its feature network's cache tag)."""

  name: str
  shape: tuple[int, int, int]
  num_classes: int = 10
  kind: ClassVar[str] = 'image'

  def load(self, data_config) -> dict[str, np.ndarray]:
    """The training set: {'images': uint8 (N, H, W, C), 'labels': (N,)}.

    The split is data_config.train_split ('train', or a slice such as
    'train[0:50000]').
    With data_config.train_fraction = f < 1, a class-stratified subset:
    round(f * N_c) examples of each class c, the first of a permutation
    drawn from data_config.subset_seed (the labelled set of a small-data
    study). Prepares the dataset if needed.
    """
    field = lambda k: data_config.get(k, config_lib.default(f'data.{k}'))
    images, labels = self.read(data_config, field('train_split'))
    f = field('train_fraction')
    if f < 1:
      keep = stratified_subset(labels, f, field('subset_seed'))
      images, labels = images[keep], labels[keep]
    return {'images': images, 'labels': labels}

  def read(self, data_config, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, H, W, C) and labels int32 (N,) of a `split`.

    `split` is 'train', 'test' or a slice such as 'train[50000:60000]'
    (Python slice semantics). Kept per process (read-only arrays): a
    sweep's points decode it once.
    """
    key = (self.name, data_config.data_dir, data_config.manual_dir, split)
    if key not in _READ_CACHE:
      images, labels = self._read(data_config, split)
      images.flags.writeable = labels.flags.writeable = False
      _READ_CACHE[key] = images, labels
    return _READ_CACHE[key]

  def _read(self, data_config, split: str) -> tuple[np.ndarray, np.ndarray]:
    """`read` without the cache: each kind of source says how."""
    raise NotImplementedError

  def take(self, source, idx: jax.Array, unit_range=False):
    """The examples at int32 indices `idx` (any shape I), scaled as
    x / 127.5 - 1 (or x / 255 with `unit_range`).

    source: `load`'s dict -> (float32 (*I, H, W, C) in [-1, 1] (or [0, 1]),
    labels int32 I).
    """
    x = source['images'][idx]
    x = unit_pixels(x) if unit_range else symmetric_pixels(x)
    return x, source['labels'][idx]

  def sample(self, source, key: jax.Array, batch_size: int, unit_range=False):
    """`take` at batch_size indices drawn uniformly with replacement."""
    n = source['labels'].shape[0]
    idx = jax.random.randint(key, (batch_size,), 0, n)
    return self.take(source, idx, unit_range)


@dataclasses.dataclass(frozen=True)
class TfdsImages(Images):
  """Images of TFDS builder `name`, in the order TFDS prepared them (it
  shuffles the original files' examples)."""

  def _read(self, data_config, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Prepares the dataset if needed."""
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    name, window = _split_window(split)
    data_dir = data_config.data_dir
    kwargs = {'split': name, 'data_dir': data_dir, 'download': False}
    try:
      source = tfds.data_source(self.name, **kwargs)
    except Exception:  # noqa: BLE001 (not prepared, or in another format)
      prepare(self.name, data_dir, data_config.manual_dir)
      source = tfds.data_source(self.name, **kwargs)
    index = range(len(source))[window]
    try:
      examples = source.__getitems__(index)
      images = np.stack([ex['image'] for ex in examples])
      labels = np.array([ex['label'] for ex in examples], np.int32)
    except Exception as e:
      raise DataError(
        f'prepared TFDS {self.name!r} under '
        f'{data_dir or "~/tensorflow_datasets"} is unreadable '
        f'({type(e).__name__}); delete its folder and rerun to prepare it '
        'again.'
      ) from e
    if images.shape[1:] != self.shape or images.dtype != np.uint8:
      raise DataError(
        f'{self.name}: expected uint8 images of shape '
        f'{self.shape}, got {images.dtype} {images.shape[1:]}.'
      )
    return images, labels


def parse_idx(raw: bytes) -> np.ndarray:
  """The uint8 array of an idx file's bytes (LeCun's MNIST format): 0, 0,
  0x08 (unsigned bytes), the number of dimensions d, d big-endian uint32
  sizes, then the data in C order. ValueError if `raw` is not one."""
  if len(raw) < 4 or raw[:3] != b'\x00\x00\x08':
    raise ValueError('no idx header of unsigned bytes')
  dims = tuple(int(k) for k in np.frombuffer(raw, '>u4', raw[3], 4))
  data = np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims))
  if data.size != math.prod(dims):
    raise ValueError(f'{data.size} data bytes for dimensions {dims}')
  return data.reshape(dims)


@dataclasses.dataclass(frozen=True)
class IdxImages(Images):
  """Images in the order of their original gzipped idx files, read from
  data_config.manual_dir; `files` lists (split, images file, labels file).
  With a SHA256SUMS file in that folder, every file read must match it."""

  files: tuple[tuple[str, str, str], ...] = dataclasses.field(kw_only=True)

  def _read(self, data_config, split: str) -> tuple[np.ndarray, np.ndarray]:
    manual_dir = data_config.manual_dir
    names = [f for _, *pair in self.files for f in pair]
    what = f'files of {self.name} ({", ".join(names)})'
    if not manual_dir or not os.path.isdir(manual_dir):
      where = f'{manual_dir}, not a folder' if manual_dir else 'not set'
      raise DataError(
        f'data.name={self.name} reads the original {what} from '
        f'data.manual_dir, which is {where}: set --config.data.manual_dir '
        'to the folder holding them.'
      )
    for name in names:
      if not os.path.exists(os.path.join(manual_dir, name)):
        raise DataError(
          f'{os.path.join(manual_dir, name)} is missing. Put the original '
          f'{what} in {manual_dir}.'
        )
    sums = manual_sums(manual_dir, names, self.name)
    pairs = {s: pair for s, *pair in self.files}
    name, window = _split_window(split)
    if name not in pairs:
      raise ConfigError(
        f'{self.name} has the splits {", ".join(pairs)}, not {split!r}; '
        'take one of them or a slice such as train[0:50000].'
      )
    images, labels = (
      self._file(os.path.join(manual_dir, f), sums) for f in pairs[name]
    )
    if images.ndim == 3:  # (N, H, W): one channel
      images = images[..., None]
    if images.shape[1:] != self.shape or len(images) != len(labels):
      raise DataError(
        f'{self.name} {name}: {images.shape} images of shape {self.shape} '
        f'with {labels.shape} labels; put the original {what} in '
        f'{manual_dir}.'
      )
    # Copies: a slice keeps no view of the whole decompressed file.
    return images[window].copy(), labels[window].astype(np.int32)

  def _file(self, path: str, sums: dict[str, str] | None) -> np.ndarray:
    """The array of the gzipped idx file at `path`, checked against `sums`."""
    with open(path, 'rb') as f:
      blob = f.read()
    name = os.path.basename(path)
    if sums is not None and hashlib.sha256(blob).hexdigest() != sums[name]:
      raise DataError(
        f'{path} does not match its SHA-256 in SHA256SUMS; replace it with '
        f'the original {self.name} file.'
      )
    try:
      return parse_idx(gzip.decompress(blob))
    except (OSError, EOFError, ValueError) as e:
      raise DataError(
        f'{path} is not a gzipped idx file ({e}); replace it with the '
        f'original {self.name} file.'
      ) from e


# The original MNIST files (LeCun et al.), in the names TFDS also expects.
MNIST_FILES = (
  ('train', 'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
  ('test', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'),
)


def epoch_indices(rng: jax.Array, start, shape: tuple[int, ...], n: int):
  """Positions start, start + 1, ... of the epoch stream: int32 `shape`.

  The stream concatenates permutations pi_0, pi_1, ... of range(n), pi_e
  drawn from fold_in(fold_in(rng, EPOCH_FOLD), e): position p holds example
  pi_{p // n}[p % n]. Each epoch [e n, (e + 1) n) visits every example once;
  a batch [t B, (t + 1) B) spans two epochs where B does not divide n. A
  pure function of (rng, p), whatever `start` (an int32 scalar, may be
  traced) and however positions are split into calls; draws the
  (prod(shape) - 1) // n + 2 permutations the positions can reach.
  """
  length = math.prod(shape)
  key = jax.random.fold_in(rng, EPOCH_FOLD)
  first = start // n
  epochs = first + jnp.arange((length - 1) // n + 2)
  perms = jax.vmap(
    lambda e: jax.random.permutation(jax.random.fold_in(key, e), n)
  )(epochs)
  p = start + jnp.arange(length)
  return perms[p // n - first, p % n].reshape(shape)


def draw_keys(key):
  """(batch key, step key) of an iteration's key fold_in(rng, step)."""
  k_data, k_z, k_step = jax.random.split(key, 3)
  return (k_data, k_z), k_step


def draw_batch(config, source, keys, idx=None) -> dict:
  """An iteration's global batch from `draw_keys`' batch keys: {'real':
  (d_steps, B, *shape) with 'y_real' (d_steps, B) their labels, 'z'
  (d_steps, B, z_dim) from the prior, 'y_fake' (d_steps, B) the labels
  y ~ U{0..K-1} asked of G}, and with augmentation 'aug': uint32 (d_steps,
  B, 2) a key per example (gan_jax/augment.py draws every transform of an
  example from its key, so the device count does not change them).
  source: the dataset's arrays (`load`).
  'real' holds the examples at int32 `idx` (d_steps, B) when given (epoch
  batching), else uniform draws with replacement."""
  dataset = DATASETS[config.data.name]
  unit = config.data.unit_range
  k_data, k_z = keys
  n, b = config.d_steps, config.batch_size
  if idx is None:
    real, y_real = jax.vmap(lambda k: dataset.sample(source, k, b, unit))(
      jax.random.split(k_data, n)
    )
  else:
    real, y_real = dataset.take(source, idx, unit)
  prior = config.model.z_prior
  z = sampling.noise(k_z, (n, b, config.model.z_dim), prior)
  y_fake = jax.random.randint(
    jax.random.fold_in(k_z, 1), (n, b), 0, dataset.num_classes
  )
  batch = {'real': real, 'y_real': y_real, 'z': z, 'y_fake': y_fake}
  if needs_augment_keys(config):
    keys = jax.random.split(jax.random.fold_in(k_z, 2), n * b)
    batch['aug'] = keys.reshape(n, b, *keys.shape[1:])
  return batch


def needs_augment_keys(config) -> bool:
  """Whether a batch carries per-example augmentation keys: with
  config.augment.method or consistency regularisation."""
  cons = config.consistency
  return bool(config.augment.method) or cons.real > 0 or cons.fake > 0


def symmetric_pixels(images):
  """uint8 pixels (N, *shape) -> float32 x / 127.5 - 1 in [-1, 1]: the scale
  models and metrics read (numpy or JAX arrays)."""
  return images.astype(np.float32) / 127.5 - 1.0


def unit_pixels(images):
  """uint8 pixels (N, *shape) -> float32 x / 255 in [0, 1]."""
  return images.astype(np.float32) / 255.0


def to_symmetric(samples, data_config):
  """Samples of a model on `data_config`'s scale -> [-1, 1] (pictures and
  metrics read this scale): 2x - 1 for unit_range images, else as they are."""
  if data_config.get('unit_range', config_lib.default('data.unit_range')):
    return samples * 2.0 - 1.0
  return samples


def stratified_subset(labels: np.ndarray, fraction: float, seed: int):
  """Sorted indices of round(fraction * N_c) examples of every class c.

  The first of each class in a permutation drawn from `seed`.
  """
  order = np.random.default_rng(seed).permutation(len(labels))
  return np.sort(
    np.concatenate(
      [
        order[labels[order] == c][: round(fraction * np.sum(labels == c))]
        for c in np.unique(labels)
      ]
    )
  )


def random_images(n: int, shape, num_classes: int = 10, seed: int = 0):
  """`TfdsImages.load`'s format filled with uniform uint8 noise and labels.

  For benchmarks and tests that need an image source of a given size.
  """
  rng = np.random.default_rng(seed)
  return {
    'images': rng.integers(0, 256, (n, *shape), np.uint8),
    'labels': rng.integers(0, num_classes, n).astype(np.int32),
  }


# (name, data_dir, manual_dir, split) -> (images, labels) this process read.
_READ_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


@dataclasses.dataclass(frozen=True)
class GaussianMixture:
  """Equal-weight mixture of N(c_k, std^2 I) over 2-D `centres` c_k."""

  centres: tuple[tuple[float, float], ...]
  std: float
  shape: ClassVar[tuple[int]] = (2,)
  kind: ClassVar[str] = 'points'

  @property
  def num_classes(self) -> int:
    """One class per mixture component."""
    return len(self.centres)

  def load(self, data_config) -> dict[str, np.ndarray]:
    """{'centres': float32 (K, 2)}; with data_config.num_train = N > 0 also
    a fixed training set {'points': (N, 2), 'labels': (N,)} drawn once from
    data_config.subset_seed (the same at every load, hence across resumes)."""
    centres = np.asarray(self.centres, np.float32)
    n = data_config.get('num_train', config_lib.default('data.num_train'))
    if not n:
      return {'centres': centres}
    key = jax.random.PRNGKey(
      data_config.get('subset_seed', config_lib.default('data.subset_seed'))
    )
    points, labels = self.draw(centres, key, n)
    return {
      'centres': centres,
      'points': np.asarray(points),
      'labels': np.asarray(labels),
    }

  def draw(self, centres, key: jax.Array, n: int):
    """n fresh draws x = c_k + std * eps, k ~ U{0..K-1}, eps ~ N(0, I):
    (x float32 (n, 2), k int32 (n,))."""
    k_mode, k_noise = jax.random.split(key)
    k = jax.random.randint(k_mode, (n,), 0, centres.shape[0])
    eps = jax.random.normal(k_noise, (n, 2), jnp.float32)
    return jnp.asarray(centres)[k] + self.std * eps, k

  def take(self, source, idx: jax.Array, unit_range=False):
    """The points (*I, 2) and components I at int32 indices `idx` (any
    shape I) of the fixed set that `source` (`load`'s dict) holds."""
    del unit_range  # images only
    return source['points'][idx], source['labels'][idx]

  def sample(self, source, key: jax.Array, batch_size: int, unit_range=False):
    """A training batch: fresh draws, or uniform with replacement from the
    fixed set when `source` (`load`'s dict) holds one."""
    if 'points' not in source:
      return self.draw(source['centres'], key, batch_size)
    idx = jax.random.randint(key, (batch_size,), 0, source['labels'].shape[0])
    return self.take(source, idx, unit_range)


# ring and grid: the 2-D mixtures of PacGAN (Lin et al. 2018), after VEEGAN
# (Srivastava et al. 2017): 8 modes at angles 2*pi*k/8 on the unit circle with
# std 0.01; 25 modes at {-4, -2, 0, 2, 4}^2 with std 0.05.
DATASETS: dict[str, Images | GaussianMixture] = {
  'mnist': TfdsImages('mnist', (28, 28, 1)),
  # MNIST in its original files' order (pylearn2's, so Goodfellow et al.
  # 2014's train[0:50000] and train[50000:60000]); needs data.manual_dir.
  'mnist_original': IdxImages('mnist_original', (28, 28, 1), files=MNIST_FILES),
  'fashion_mnist': TfdsImages('fashion_mnist', (28, 28, 1)),
  'cifar10': TfdsImages('cifar10', (32, 32, 3)),
  'ring': GaussianMixture(
    tuple(
      (math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8))
      for k in range(8)
    ),
    std=0.01,
  ),
  'grid': GaussianMixture(
    tuple(itertools.product((-4.0, -2.0, 0.0, 2.0, 4.0), repeat=2)),
    std=0.05,
  ),
}
