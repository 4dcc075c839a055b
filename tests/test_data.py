"""Datasets: toy mixture statistics, TFDS image loading, bad manual folders."""

import gzip
import hashlib
import pathlib
import shutil

import jax
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking

from gan_jax import data
from gan_jax import errors


def _config(name, data_dir=None, manual_dir=None):
  return ml_collections.ConfigDict(
    {'name': name, 'data_dir': data_dir, 'manual_dir': manual_dir}
  )


@pytest.mark.parametrize('name', ['ring', 'grid'])
def test_toy_mixture_statistics(name):
  """x = c_k + std * eps with k ~ U{0..K-1}, eps ~ N(0, I_2); N = 20,000.

  - Nearest centre within 5 std: ||eps||^2 ~ chi2(2), so a point lies beyond
    with probability exp(-25 / 2) ~ 4e-6 (modes are 2 / std >= 40 std apart,
    so the nearest centre is the one the point was drawn from).
  - Mode counts ~ Binomial(N, 1/K): within 15% of N/K, i.e. over 4 binomial
    standard deviations for K = 25 (800 +- 28), 8 for K = 8 (2500 +- 47).
  - Per mode, the std of the 2 * count residual coordinates estimates `std`
    with relative error ~ 1 / sqrt(4 * count) <= 2%: within 10%.
  """
  ds = data.DATASETS[name]
  assert ds.kind == 'points' and ds.shape == (2,)
  source = ds.load(_config(name, '/nonexistent', '/nonexistent'))
  centres = source['centres']
  k_modes = {'ring': 8, 'grid': 25}[name]
  assert centres.dtype == np.float32 and centres.shape == (k_modes, 2)

  n = 20_000
  x, k = ds.sample(source, jax.random.key(0), n)
  assert k.shape == (n,) and k.dtype == jax.numpy.int32
  assert x.dtype == jax.numpy.float32 and x.shape == (n, 2)
  x = np.asarray(x)
  dist = np.linalg.norm(x[:, None] - centres[None], axis=-1)  # (N, K)
  mode = dist.argmin(axis=1)
  assert dist.min(axis=1).max() < 5 * ds.std
  counts = np.bincount(mode, minlength=k_modes)
  np.testing.assert_allclose(counts, n / k_modes, rtol=0.15)
  for k in range(k_modes):
    residual = x[mode == k] - centres[k]
    np.testing.assert_allclose(residual.std(), ds.std, rtol=0.10)


@pytest.mark.parametrize('name', ['ring', 'grid'])
def test_toy_sample_is_pure_and_jittable(name):
  """Same key -> same batch, eager or jitted; another key -> another batch."""
  ds = data.DATASETS[name]
  source = jax.tree.map(jax.numpy.asarray, ds.load(_config(name)))
  key = jax.random.key(1)
  x, k = ds.sample(source, key, 64)
  np.testing.assert_array_equal(x, ds.sample(source, key, 64)[0])
  jitted, jitted_k = jax.jit(ds.sample, static_argnums=2)(source, key, 64)
  np.testing.assert_allclose(jitted, x, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(jitted_k, k)
  assert not np.allclose(x, ds.sample(source, jax.random.key(2), 64)[0])


@pytest.mark.parametrize('name', ['fashion_mnist', 'cifar10'])
def test_tfds_images_with_mock_data(name, monkeypatch):
  """Random examples of the builder's features through `tfds.data_source`.

  In TFDS 4.9.10 `mock_data` patches `DatasetBuilder.as_data_source`, but its
  batched read is broken: it sets `__getitems__` (not a magic method `mock`
  knows) on the mock record source as a plain attribute, so the call lacks
  `self`. The patch below drops that argument; everything else is TFDS's.
  """
  monkeypatch.setattr(
    mocking, '_getitems', lambda keys, generator: [generator[k] for k in keys]
  )
  ds = data.DATASETS[name]
  assert ds.kind == 'image'
  with tfds.testing.mock_data(
    num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE
  ):
    source = ds.load(_config(name))
  images, labels = source['images'], source['labels']
  assert images.dtype == np.uint8 and images.shape == (12, *ds.shape)
  assert labels.shape == (12,) and 0 <= labels.min() <= labels.max() < 10
  x, y = jax.jit(ds.sample, static_argnums=2)(source, jax.random.key(0), 32)
  assert x.dtype == jax.numpy.float32 and x.shape == (32, *ds.shape)
  assert set(np.asarray(y)) <= set(labels)
  assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_mnist_real_copy(mnist_dirs):
  """All 60,000 training images with labels; mean pixel ~ 33.3 / 255; a
  1% subset has 1% of every class, the same for the same subset_seed."""
  manual_dir, data_dir = mnist_dirs
  ds = data.DATASETS['mnist']
  source = ds.load(_config('mnist', data_dir, manual_dir))
  images, labels = source['images'], source['labels']
  assert isinstance(images, np.ndarray) and labels.shape == (60_000,)
  assert images.dtype == np.uint8 and images.shape == (60_000, 28, 28, 1)
  assert 30.0 < images.mean() < 37.0
  # Labelled splits: the test split, and a slice of train (the Parzen
  # validation set of Goodfellow et al. 2014).
  test, test_labels = ds.read(_config('mnist', data_dir, manual_dir), 'test')
  assert test.shape == (10_000, 28, 28, 1) and test_labels.shape == (10_000,)
  assert sorted(np.unique(test_labels)) == list(range(10))
  valid, _ = ds.read(_config('mnist', data_dir, manual_dir), 'train[50000:]')
  np.testing.assert_array_equal(valid, images[50_000:])
  x, y = ds.sample(source, jax.random.key(0), 16)
  assert x.dtype == jax.numpy.float32 and x.shape == (16, 28, 28, 1)
  assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
  small_config = _config('mnist', data_dir, manual_dir)
  small_config.train_fraction = 0.01
  small = ds.load(small_config)
  counts = np.bincount(small['labels'], minlength=10)
  np.testing.assert_array_equal(
    counts, np.round(0.01 * np.bincount(labels, minlength=10))
  )
  rows = data.stratified_subset(labels, 0.01, seed=0)
  np.testing.assert_array_equal(images[rows], small['images'])
  np.testing.assert_array_equal(labels[rows], small['labels'])
  again = ds.load(small_config)['images']
  np.testing.assert_array_equal(again, small['images'])


def _write_sums(folder):
  names = sorted(p.name for p in folder.glob('*.gz'))
  lines = [
    f'{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n'
    for n in names
  ]
  (folder / 'SHA256SUMS').write_text(''.join(lines))


def _prepared(data_dir):
  return any(pathlib.Path(data_dir).rglob('dataset_info.json'))


def test_bad_manual_dir(mnist_dirs, tmp_path):
  """Bad folders raise DataError naming the folder and the files it needs;
  nothing is left that counts as prepared, and a later fixed run succeeds.

  The truncated file passes SHA256SUMS (its hash is listed) and fails while
  examples are generated, after TFDS has extracted every archive.
  """
  original = pathlib.Path(mnist_dirs[0])
  data_dir = tmp_path / 'tfds'
  manual = tmp_path / 'manual'
  ds = data.DATASETS['mnist']

  with pytest.raises(errors.DataError, match='is not a folder') as e:
    ds.load(_config('mnist', str(data_dir), str(manual)))
  assert str(manual) in str(e.value) and 'original mnist files' in str(e.value)

  manual.mkdir()
  shutil.copy(original / 'SHA256SUMS', manual)
  for name in original.glob('*.gz'):
    if name.name != 'train-images-idx3-ubyte.gz':
      shutil.copy(name, manual)
  with pytest.raises(errors.DataError, match='is missing') as e:
    ds.load(_config('mnist', str(data_dir), str(manual)))
  assert str(manual / 'train-images-idx3-ubyte.gz') in str(e.value)
  assert f'in {manual}' in str(e.value)
  assert not _prepared(data_dir)

  with gzip.open(original / 'train-images-idx3-ubyte.gz') as f:
    head = f.read(16 + 28 * 28 * 10)  # header and 10 of 60,000 images
  with gzip.open(manual / 'train-images-idx3-ubyte.gz', 'wb') as f:
    f.write(head)
  _write_sums(manual)
  with pytest.raises(errors.DataError, match=f'manual_dir={manual}'):
    ds.load(_config('mnist', str(data_dir), str(manual)))
  assert not _prepared(data_dir)

  for name in original.iterdir():
    shutil.copy(name, manual)
  images = ds.load(_config('mnist', str(data_dir), str(manual)))['images']
  assert images.shape == (60_000, 28, 28, 1)
