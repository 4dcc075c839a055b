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

from experiments import goodfellow2014_mnist, toy_ring
from gan_jax import config as config_lib
from gan_jax import data, errors, train_state, train_step, validate


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
  x, _ = ds.sample(source, jax.random.key(0), 16)
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


def _write_idx(path, array):
  """A gzipped idx file: 0, 0, 0x08 (unsigned bytes), ndim, big-endian
  uint32 sizes, then the uint8 data."""
  header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, '>u4').tobytes()
  with gzip.open(path, 'wb') as f:
    f.write(header + array.astype(np.uint8).tobytes())


def _fake_mnist(folder, n_train=7, n_test=3):
  """Fake original MNIST files in `folder` with their SHA256SUMS; returns
  {split: (images (N, 28, 28), labels (N,))} as written."""
  folder.mkdir()
  rng = np.random.default_rng(0)
  written = {}
  for (split, images_file, labels_file), n in zip(
    data.MNIST_FILES, (n_train, n_test)
  ):
    images = rng.integers(0, 256, (n, 28, 28), np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    _write_idx(folder / images_file, images)
    _write_idx(folder / labels_file, labels)
    written[split] = images, labels
  _write_sums(folder)
  return written


def test_original_order_reads_the_files_in_order(tmp_path):
  """mnist_original: image i of a split is the file's i-th, with its label;
  slices are Python slices of that order; load takes data.train_split."""
  written = _fake_mnist(tmp_path / 'mnist')
  ds = data.DATASETS['mnist_original']
  config = _config('mnist_original', None, str(tmp_path / 'mnist'))
  for split, (images, labels) in written.items():
    got, got_labels = ds.read(config, split)
    assert got.dtype == np.uint8 and got.shape == (len(images), 28, 28, 1)
    np.testing.assert_array_equal(got[..., 0], images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_labels.dtype == np.int32
  valid, valid_labels = ds.read(config, 'train[2:5]')
  np.testing.assert_array_equal(valid[..., 0], written['train'][0][2:5])
  np.testing.assert_array_equal(valid_labels, written['train'][1][2:5])
  config.train_split = 'train[0:4]'
  source = ds.load(config)
  np.testing.assert_array_equal(
    source['images'][..., 0], written['train'][0][:4]
  )
  with pytest.raises(errors.ConfigError, match="splits train, test, not 'va"):
    ds.read(config, 'valid')


def test_original_order_bad_folders_say_what_to_do(tmp_path):
  """No manual_dir, a missing file, a file unlisted in or not matching
  SHA256SUMS, a file that is not idx: one DataError each, naming the fix."""
  ds = data.DATASETS['mnist_original']
  with pytest.raises(errors.DataError, match='--config.data.manual_dir'):
    ds.read(_config('mnist_original'), 'train')
  folder = tmp_path / 'mnist'
  _fake_mnist(folder)
  (folder / 't10k-labels-idx1-ubyte.gz').unlink()
  with pytest.raises(errors.DataError, match='t10k-labels-idx1-ubyte.gz is mi'):
    ds.read(_config('mnist_original', None, str(folder)), 'train')
  _write_idx(folder / 't10k-labels-idx1-ubyte.gz', np.zeros(3, np.uint8))
  with pytest.raises(errors.DataError, match='does not match its SHA-256'):
    ds.read(_config('mnist_original', None, str(folder)), 'test')
  sums = (folder / 'SHA256SUMS').read_text().splitlines(keepends=True)
  (folder / 'SHA256SUMS').write_text(''.join(sums[1:]))
  with pytest.raises(errors.DataError, match='not listed in'):
    ds.read(_config('mnist_original', None, str(folder)), 'train')
  (folder / 'SHA256SUMS').unlink()  # unchecked: the idx header still is
  with gzip.open(folder / 'train-images-idx3-ubyte.gz', 'wb') as f:
    f.write(b'\x00\x00\x08\x03' + np.array([7, 28, 28], '>u4').tobytes())
  with pytest.raises(errors.DataError, match='not a gzipped idx file'):
    ds.read(_config('mnist_original', None, str(folder)), 'train')


def test_original_order_of_the_real_copy(mnist_manual_dir):
  """The real files: the known first labels of train (5 0 4 1 9 2 1 3 1 4),
  of train[50000:] (3 8 6 9 6) and of test (7 2 1 0 4), and the class
  counts of the copy's README."""
  ds = data.DATASETS['mnist_original']
  config = _config('mnist_original', None, mnist_manual_dir)
  images, labels = ds.read(config, 'train')
  assert images.shape == (60_000, 28, 28, 1)
  assert list(labels[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
  assert list(labels[50_000:50_005]) == [3, 8, 6, 9, 6]
  assert list(ds.read(config, 'test')[1][:5]) == [7, 2, 1, 0, 4]
  counts = '5923 6742 5958 6131 5842 5421 5918 6265 5851 5949'
  assert list(np.bincount(labels)) == [int(c) for c in counts.split()]


@pytest.mark.parametrize('n, batch', [(10, 3), (12, 4)])
def test_epoch_stream_visits_every_example_once_per_epoch(n, batch):
  """Positions [e n, (e + 1) n) are a permutation of range(n) for every
  epoch e, another one each epoch; batch t is positions [t B, (t + 1) B),
  across an epoch boundary where B does not divide n (B = 3, n = 10)."""
  rng = jax.random.PRNGKey(0)
  steps = 10
  idx = np.asarray(data.epoch_indices(rng, 0, (steps, 1, batch), n))
  stream = idx.reshape(-1)
  epochs = stream[: len(stream) // n * n].reshape(-1, n)
  for order in epochs:
    np.testing.assert_array_equal(np.sort(order), np.arange(n))
  assert len({tuple(order) for order in epochs}) == len(epochs)
  np.testing.assert_array_equal(idx[3, 0], stream[3 * batch : 4 * batch])


def test_epoch_stream_is_a_pure_function_of_the_position():
  """A resumed or differently dispatched run takes the same batches: 10
  steps in one call equal 4 + 6 steps (from position 4 x 3), eager or
  jitted with a traced start; another rng gives another stream."""
  rng = jax.random.PRNGKey(1)
  whole = data.epoch_indices(rng, 0, (10, 1, 3), 10)
  jitted = jax.jit(data.epoch_indices, static_argnums=(2, 3))
  parts = [jitted(rng, 0, (4, 1, 3), 10), jitted(rng, 12, (6, 1, 3), 10)]
  np.testing.assert_array_equal(whole, np.concatenate(parts))
  other = data.epoch_indices(jax.random.PRNGKey(2), 0, (10, 1, 3), 10)
  assert not np.array_equal(whole, other)


def _ring_fn(batching, steps_per_dispatch):
  """(train fn, state, source): the smoke ring GAN on a fixed 20-point set,
  batch 8 (20 = 2.5 batches), on 4 devices."""
  config = toy_ring.get_config('smoke')
  config.data.update(num_train=20, batching=batching)
  config.batch_size, config.steps_per_dispatch = 8, steps_per_dispatch
  mesh = jax.make_mesh(
    (4,), (train_step.AXIS,), axis_types=(jax.sharding.AxisType.Auto,)
  )
  gan = train_state.build(config, (2,), axis_name=train_step.AXIS)
  state = train_state.init_state(gan, 2, (2,), jax.random.PRNGKey(0))
  source = data.DATASETS['ring'].load(config.data)
  return train_step.make_train_fn(mesh, config, gan), state, source


def test_epoch_batching_resumes_exactly_across_dispatches():
  """The data-parallel step with data.batching='epochs': 2 dispatches of 5
  steps give the 10-step dispatch's state (the batches depend on the step,
  not on where a dispatch starts); 'uniform' batches give another."""
  fn, state, source = _ring_fn('epochs', 10)
  whole = jax.device_get(fn(state, source)[0])
  fn, state, source = _ring_fn('epochs', 5)
  halves = jax.device_get(fn(fn(state, source)[0], source)[0])
  for a, b in zip(jax.tree.leaves(whole), jax.tree.leaves(halves)):
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
  fn, state, source = _ring_fn('uniform', 10)
  uniform = jax.device_get(fn(state, source)[0])
  assert not all(
    np.allclose(a, b)
    for a, b in zip(jax.tree.leaves(uniform), jax.tree.leaves(whole))
  )


def test_uniform_batching_is_the_default_and_unchanged():
  """The default draws x = images[randint(key, (B,), 0, N)] / 127.5 - 1, as
  before epoch batching existed."""
  assert config_lib.base_config().data.batching == 'uniform'
  source = jax.tree.map(jax.numpy.asarray, data.random_images(50, (4, 4, 1)))
  key = jax.random.PRNGKey(3)
  x, y = data.DATASETS['mnist'].sample(source, key, 16)
  idx = jax.random.randint(key, (16,), 0, 50)
  want = source['images'][idx].astype(np.float32) / 127.5 - 1.0
  np.testing.assert_array_equal(x, want)
  np.testing.assert_array_equal(y, source['labels'][idx])


def test_batching_is_validated_when_the_config_is_read():
  """An unknown batching lists the valid ones; epochs needs a fixed set."""
  config = toy_ring.get_config('smoke')
  config.data.batching = 'shuffled'
  with pytest.raises(errors.ConfigError, match='valid: epochs, uniform'):
    validate.validate(config)
  config.data.batching = 'epochs'
  with pytest.raises(errors.ConfigError, match='num_train=N > 0'):
    validate.validate(config)
  config.data.num_train = 100
  validate.validate(config)
  config.num_steps = 2**30
  with pytest.raises(errors.ConfigError, match='below 2\\^31'):
    validate.validate(config)


def test_goodfellow_released_protocol_uses_original_order_and_epochs():
  """The released protocol trains as pylearn2 did; protocol=adam keeps
  TFDS's order and uniform batches."""
  released = goodfellow2014_mnist.get_config()
  assert (released.data.name, released.data.batching) == (
    'mnist_original',
    'epochs',
  )
  adam = goodfellow2014_mnist.get_config('protocol=adam')
  assert (adam.data.name, adam.data.batching) == ('mnist', 'uniform')
