"""Each experiment file's smoke variant runs end to end through
train_and_evaluate and leaves a complete run directory."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.testing import mocking

from gan_jax import losses, train
from experiments import cifar10_sngan, toy_ring


def _check_run(workdir, last_step):
  rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').open()]
  assert rows[-1]['step'] == last_step
  for r in rows:
    assert all(np.isfinite(v) for v in r.values()), r
  assert (workdir / 'samples' / f'step_{last_step:06d}.png').exists()
  assert (workdir / 'checkpoints' / str(last_step)).is_dir()
  return rows


@pytest.mark.parametrize('loss', sorted(losses.LOSSES))
def test_toy_ring_smoke_every_objective(loss, tmp_path):
  config = toy_ring.get_config(f'loss={loss},smoke')
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == config.num_steps
  _check_run(tmp_path, config.num_steps)


def test_toy_grid_smoke_with_ema(tmp_path):
  config = toy_ring.get_config('dataset=grid,smoke')
  config.ema_decay = 0.99
  state = train.train_and_evaluate(config, str(tmp_path))
  assert state.g_ema is not None
  _check_run(tmp_path, config.num_steps)


@pytest.mark.parametrize('model', ['resnet', 'dcgan'])
def test_cifar10_sngan_smoke_on_mock_data(model, tmp_path, monkeypatch):
  # TFDS 4.9.10's mock source sets __getitems__ without `self`; see test_data.
  monkeypatch.setattr(
    mocking, '_getitems', lambda keys, generator: [generator[k] for k in keys]
  )
  config = cifar10_sngan.get_config(f'model={model},smoke')
  with tfds.testing.mock_data(
    num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE
  ):
    train.train_and_evaluate(config, str(tmp_path))
  _check_run(tmp_path, config.num_steps)
