"""Datasets: one array put on every device, and pure per-step batch samplers.

Each entry of `DATASETS` has `shape` (one example), `kind` ('image' or
'points'), `num_classes` K, `load(data_config)` -> the host source (a pytree
of arrays) to replicate, and `sample(source, key, batch_size)` -> (float32
(batch_size, *shape), int32 labels (batch_size,) in {0..K-1}), jittable.
Image labels are the dataset's classes, toy labels the mixture component.

Image datasets come from their TFDS builders, prepared once as array_record
(readable without TensorFlow). With `manual_dir` set, TFDS takes the original
files from that folder instead of downloading them; if the folder holds a
`SHA256SUMS` file, the files are validated against it rather than against the
upstream checksums TFDS ships (a re-compressed copy has other .gz hashes).

Toy sets are equal-weight mixtures of isotropic 2-D Gaussians (no files).
"""

import dataclasses
import itertools
import math
import os
import tempfile
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import console
from gan_jax.errors import DataError


def _local_url_infos(builder_cls, manual_dir):
  """UrlInfos that validate the files in `manual_dir` against its SHA256SUMS."""
  from tensorflow_datasets.core.download import checksums  # pylint: disable=g-import-not-at-top

  sums_path = os.path.join(manual_dir, 'SHA256SUMS')
  if not os.path.exists(sums_path):
    return None
  with open(sums_path) as f:
    sums = {
      name.lstrip('*'): digest
      for digest, name in (line.split() for line in f if line.strip())
    }
  infos = {}
  for url in builder_cls.url_infos:
    name = os.path.basename(url)
    path = os.path.join(manual_dir, name)
    if name not in sums or not os.path.exists(path):
      raise DataError(
        f'{path} is missing or not listed in {sums_path}. '
        f'Put the original {builder_cls.name} files '
        f'({", ".join(os.path.basename(u) for u in builder_cls.url_infos)}) '
        f'in {manual_dir}.'
      )
    infos[url] = checksums.UrlInfo(
      size=os.path.getsize(path), checksum=sums[name], filename=name
    )
  return infos


def prepare(name: str, data_dir: str | None, manual_dir: str | None) -> None:
  """Prepares TFDS dataset `name` (needs TensorFlow) unless already done.

  Archives are extracted into a temporary folder: TFDS names extracted files
  after the archive only, so a kept extraction of a bad manual file would be
  reused after the file is fixed. A failed run leaves nothing that counts as
  prepared (TFDS writes the dataset under a temporary name, then renames it).
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


@dataclasses.dataclass(frozen=True)
class TfdsImages:
  """Training images of TFDS builder `tfds_name`, uint8 of `shape`."""

  tfds_name: str
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
    images, labels = self.read(
      data_config, data_config.get('train_split', 'train')
    )
    f = data_config.get('train_fraction', 1.0)
    if f < 1:
      keep = stratified_subset(labels, f, data_config.get('subset_seed', 0))
      images, labels = images[keep], labels[keep]
    return {'images': images, 'labels': labels}

  def read(self, data_config, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, H, W, C) and labels int32 (N,) of a TFDS `split`.

    `split` is 'train', 'test' or a slice such as 'train[50000:60000]'
    (taken from the prepared split); prepares the dataset if needed. Kept
    per process (read-only arrays): a sweep's points decode it once.
    """
    key = (self.tfds_name, data_config.data_dir, split)
    if key not in _READ_CACHE:
      images, labels = self._read(data_config, split)
      images.flags.writeable = labels.flags.writeable = False
      _READ_CACHE[key] = images, labels
    return _READ_CACHE[key]

  def _read(self, data_config, split: str) -> tuple[np.ndarray, np.ndarray]:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    name, _, window = split.partition('[')
    data_dir = data_config.data_dir
    kwargs = {'split': name, 'data_dir': data_dir, 'download': False}
    try:
      source = tfds.data_source(self.tfds_name, **kwargs)
    except Exception:  # noqa: BLE001 (not prepared, or in another format)
      prepare(self.tfds_name, data_dir, data_config.manual_dir)
      source = tfds.data_source(self.tfds_name, **kwargs)
    start, _, stop = window.rstrip(']').partition(':')
    index = range(len(source))[
      slice(int(start) if start else None, int(stop) if stop else None)
    ]
    try:
      examples = source.__getitems__(index)
      images = np.stack([ex['image'] for ex in examples])
      labels = np.array([ex['label'] for ex in examples], np.int32)
    except Exception as e:
      raise DataError(
        f'prepared TFDS {self.tfds_name!r} under '
        f'{data_dir or "~/tensorflow_datasets"} is unreadable '
        f'({type(e).__name__}); delete its folder and rerun to prepare it '
        'again.'
      ) from e
    if images.shape[1:] != self.shape or images.dtype != np.uint8:
      raise DataError(
        f'{self.tfds_name}: expected uint8 images of shape '
        f'{self.shape}, got {images.dtype} {images.shape[1:]}.'
      )
    return images, labels

  def sample(self, source, key: jax.Array, batch_size: int, unit_range=False):
    """Draws examples uniformly with replacement, scaled as x / 127.5 - 1
    (or x / 255 with `unit_range`).

    source: `load`'s dict -> (float32 (batch_size, H, W, C) in [-1, 1] (or
    [0, 1]), labels int32 (batch_size,)).
    """
    n = source['labels'].shape[0]
    idx = jax.random.randint(key, (batch_size,), 0, n)
    x = source['images'][idx].astype(jnp.float32)
    x = x / 255.0 if unit_range else x / 127.5 - 1.0
    return x, source['labels'][idx]


def to_symmetric(samples, data_config):
  """Samples of a model on `data_config`'s scale -> [-1, 1] (pictures and
  metrics read this scale): 2x - 1 for unit_range images, else as they are."""
  if data_config.get('unit_range', False):
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


# (tfds name, data_dir, split) -> (images, labels) decoded by this process.
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
    n = data_config.get('num_train', 0)
    if not n:
      return {'centres': centres}
    key = jax.random.PRNGKey(data_config.get('subset_seed', 0))
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

  def sample(self, source, key: jax.Array, batch_size: int, unit_range=False):
    """A training batch: fresh draws, or uniform with replacement from the
    fixed set when `source` (`load`'s dict) holds one."""
    del unit_range  # images only
    if 'points' not in source:
      return self.draw(source['centres'], key, batch_size)
    idx = jax.random.randint(key, (batch_size,), 0, source['labels'].shape[0])
    return source['points'][idx], source['labels'][idx]


# ring and grid: the 2-D mixtures of PacGAN (Lin et al. 2018), after VEEGAN
# (Srivastava et al. 2017): 8 modes at angles 2*pi*k/8 on the unit circle with
# std 0.01; 25 modes at {-4, -2, 0, 2, 4}^2 with std 0.05.
DATASETS: dict[str, TfdsImages | GaussianMixture] = {
  'mnist': TfdsImages('mnist', (28, 28, 1)),
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
