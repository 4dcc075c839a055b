"""Tests for gan_jax.metrics.inception (the FID Inception-v3 network)."""

import math
import sys

import jax
import numpy as np
import pytest

from gan_jax import errors
from gan_jax.metrics import inception

# Sum of numel over pytorch-fid's fid_inception_v3().state_dict() without the
# num_batches_tracked counters, measured with pytorch-fid 0.3.0, torchvision
# 0.28, torch 2.13: 472 arrays. Of these, 23,850,960 are trainable parameters
# (torchvision's 23,834,568 for Inception-v3 without the aux head, plus
# 8 * 2049 for 1008 rather than 1000 classes); 34,432 are BN running stats.
FID_INCEPTION_NUMEL = 23_885_392
FID_INCEPTION_ARRAYS = 472
CONVERT = (
  'python -m gan_jax.metrics.inception --convert '
  'pt_inception-2015-12-05-6726825d.pth inception_fid.npz'
)

_features = jax.jit(inception.features)


@pytest.fixture(scope='module')
def params():
  return inception.init_params(jax.random.key(0))


@pytest.fixture(scope='module')
def npz_path(params, tmp_path_factory):
  path = tmp_path_factory.mktemp('inception') / 'weights.npz'
  np.savez(path, **params)
  return str(path)


def test_param_shapes_match_pytorch_fid_and_init(params):
  shapes = inception.param_shapes()
  assert len(shapes) == FID_INCEPTION_ARRAYS
  assert sum(math.prod(s) for s in shapes.values()) == FID_INCEPTION_NUMEL
  assert shapes['Conv2d_1a_3x3.conv.weight'] == (32, 3, 3, 3)
  assert shapes['Mixed_7c.branch3x3dbl_3b.conv.weight'] == (384, 384, 3, 1)
  assert shapes['fc.weight'] == (1008, 2048)
  assert not any('num_batches_tracked' in k for k in shapes)
  assert list(params) == list(shapes)
  for k, v in params.items():
    assert v.shape == shapes[k] and v.dtype == np.float32, k
    if k.endswith('running_var'):
      assert (v > 0).all(), k


@pytest.mark.parametrize('shape', [(2, 28, 28, 1), (2, 32, 32, 3)])
def test_features_shapes_and_ranges(params, shape):
  images = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
  pool3, probs = map(np.asarray, _features(params, images))
  assert pool3.shape == (2, 2048) and pool3.dtype == np.float32
  assert probs.shape == (2, 1008) and probs.dtype == np.float32
  assert np.isfinite(pool3).all() and np.isfinite(probs).all()
  assert (pool3 >= 0).all() and pool3.max() > 0
  np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
  # The two images differ, and so do their features.
  assert np.abs(pool3[0] - pool3[1]).max() > 1e-3


def test_npz_round_trip(params, npz_path):
  loaded = inception.load_params(npz_path)
  assert list(loaded) == list(params)
  for k, v in params.items():
    np.testing.assert_array_equal(np.asarray(loaded[k]), v)
  images = np.random.default_rng(1).uniform(-1, 1, (2, 32, 32, 3))
  images = images.astype(np.float32)
  for ours, theirs in zip(_features(params, images), _features(loaded, images)):
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.mark.parametrize('path', [None, 'missing'])
def test_load_params_without_file_says_what_to_do(path, tmp_path):
  if path is not None:
    path = str(tmp_path / 'missing.npz')
  with pytest.raises(errors.InceptionWeightsError) as e:
    inception.load_params(path)
  message = str(e.value)
  assert inception.WEIGHTS_URL in message
  assert CONVERT in message
  assert 'config.eval.inception_path' in message
  assert 'pip install torch' in message


def test_load_params_names_wrong_arrays(params, tmp_path):
  bad = dict(params)
  del bad['fc.bias']
  bad['Mixed_6b.branch7x7_2.conv.weight'] = np.zeros((128, 128, 7, 1))
  bad['aux.weight'] = np.zeros(3)
  path = tmp_path / 'bad.npz'
  np.savez(path, **bad)
  with pytest.raises(errors.InceptionWeightsError) as e:
    inception.load_params(str(path))
  message = str(e.value)
  assert 'missing keys (1): fc.bias' in message
  assert 'unexpected keys (1): aux.weight' in message
  assert 'Mixed_6b.branch7x7_2.conv.weight (128, 128, 7, 1)' in message
  assert CONVERT in message


def test_convert_without_torch_says_how_to_install(monkeypatch, tmp_path):
  monkeypatch.setitem(sys.modules, 'torch', None)  # import torch fails
  (tmp_path / 'a.pth').touch()
  with pytest.raises(SystemExit, match='pip install torch'):
    inception.main(['--convert', str(tmp_path / 'a.pth'), 'b.npz'])


def _torch_bilinear_matrix(n_in, n_out):
  """(n_out, n_in) weights of torch's bilinear, align_corners=False, 1-D."""
  w = np.zeros((n_out, n_in))
  for i in range(n_out):
    src = max((i + 0.5) * n_in / n_out - 0.5, 0.0)
    i0 = min(int(np.floor(src)), n_in - 1)
    i1 = min(i0 + 1, n_in - 1)
    w[i, i0] += 1 - (src - i0)
    w[i, i1] += src - i0
  return w


def test_resize_is_torch_bilinear_without_antialias():
  # 2x2 -> 4x4 by hand: torch samples rows/cols at max((i + .5)/2 - .5, 0),
  # i.e. interpolation weights 0, 1/4, 3/4, 1 (align_corners=True would give
  # 0, 1/3, 2/3, 1), so out[i, j] = 2 t_i + t_j for [[0, 1], [2, 3]].
  image = np.array([[0.0, 1.0], [2.0, 3.0]], np.float32)[None, :, :, None]
  expected = [
    [0.0, 0.25, 0.75, 1.0],
    [0.5, 0.75, 1.25, 1.5],
    [1.5, 1.75, 2.25, 2.5],
    [2.0, 2.25, 2.75, 3.0],
  ]
  out = np.asarray(inception.resize(image, 4))[0, :, :, 0]
  np.testing.assert_allclose(out, expected, atol=1e-6)
  # Downsampling: point-sampled triangle weights, no antialiasing filter.
  rng = np.random.default_rng(0)
  for h, w, size in [(7, 9, 3), (310, 400, 299)]:
    image = rng.normal(size=(1, h, w, 2)).astype(np.float32)
    want = np.einsum('ih,nhwc->niwc', _torch_bilinear_matrix(h, size), image)
    want = np.einsum('jw,niwc->nijc', _torch_bilinear_matrix(w, size), want)
    got = np.asarray(inception.resize(image, size))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_matches_pytorch_fid(params, tmp_path, monkeypatch):
  """Same pool3 and probabilities as pytorch-fid on the same weights.

  pytorch-fid's own fid_inception_v3() builds the torch model, with its weight
  download replaced by our random init_params (random BN running statistics
  included). Its state_dict goes through `main --convert` and `load_params`.
  """
  pytorch_fid_inception = pytest.importorskip('pytorch_fid.inception')
  torch = pytest.importorskip('torch')
  state = {k: torch.from_numpy(v) for k, v in params.items()}
  monkeypatch.setattr(
    pytorch_fid_inception, 'load_state_dict_from_url', lambda *a, **k: state
  )
  model = pytorch_fid_inception.fid_inception_v3().eval()
  pool3_net = pytorch_fid_inception.InceptionV3([3]).eval()
  exported = model.state_dict()
  assert {
    k: tuple(v.shape)
    for k, v in exported.items()
    if not k.endswith('num_batches_tracked')
  } == inception.param_shapes()

  pth, npz = str(tmp_path / 'fid.pth'), str(tmp_path / 'fid.npz')
  torch.save(exported, pth)
  inception.main(['--convert', pth, npz])
  loaded = inception.load_params(npz)

  images01 = np.random.default_rng(2).uniform(size=(2, 40, 24, 3))
  images01 = images01.astype(np.float32)
  with torch.no_grad():
    x = torch.from_numpy(images01).permute(0, 3, 1, 2)
    want_pool3 = pool3_net(x)[0][:, :, 0, 0]
    want_probs = torch.softmax(model.fc(want_pool3), -1).numpy()
    want_pool3 = want_pool3.numpy()
  pool3, probs = map(np.asarray, _features(loaded, 2 * images01 - 1))
  scale = np.abs(want_pool3).max()
  print(
    f'pytorch-fid parity: pool3 max |diff| '
    f'{np.abs(pool3 - want_pool3).max():.3g}, relative to max |pool3| '
    f'{np.abs(pool3 - want_pool3).max() / scale:.3g}; probabilities max '
    f'|diff| {np.abs(probs - want_probs).max():.3g}'
  )
  np.testing.assert_allclose(pool3, want_pool3, rtol=1e-4, atol=1e-4 * scale)
  np.testing.assert_allclose(probs, want_probs, rtol=1e-4, atol=1e-7)

  # The resize alone, down- and upsampling, against F.interpolate. torch
  # computes its sample positions in float32, off from the exact formula
  # (which `resize` follows to ~4e-7) by up to ~1e-7 * H pixels: ~2e-4 on
  # these N(0, 1) pixels at 320x410 -> 299, hence a tolerance growing with H.
  for h, w in [(320, 410), (5, 7)]:
    image = np.random.default_rng(3).normal(size=(1, h, w, 3))
    image = image.astype(np.float32)
    want = torch.nn.functional.interpolate(
      torch.from_numpy(image).permute(0, 3, 1, 2),
      size=(299, 299),
      mode='bilinear',
      align_corners=False,
    )
    got = np.asarray(inception.resize(image))
    np.testing.assert_allclose(
      got, want.permute(0, 2, 3, 1).numpy(), atol=1e-6 * max(h, w)
    )
