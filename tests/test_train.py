"""End to end on the real MNIST copy: exact resume, and launch.py smoke runs."""

import json
import pathlib
import subprocess
import sys

import jax
import numpy as np

from gan_jax import overfitting, train
from experiments import mnist_dcgan

REPO = pathlib.Path(__file__).resolve().parents[1]


def _config(mnist_dirs, num_steps):
  config = mnist_dcgan.get_config('smoke')
  config.data.manual_dir, config.data.data_dir = mnist_dirs
  config.eval.metrics = ''  # training state is under test (evals: below)
  config.num_steps = num_steps
  config.checkpoint_every = config.log_every = config.sample_every = 5
  return config


def test_resume_is_exact(mnist_dirs, tmp_path):
  """2k steps in one run == k steps, a stop, and k more from the checkpoint.

  Every step's randomness is fold_in(rng, step) and the checkpoint holds the
  whole state, so the two runs are the same computation: bitwise equal.
  """
  k = 10
  straight = train.train_and_evaluate(
    _config(mnist_dirs, 2 * k), str(tmp_path / 'straight')
  )
  first = train.train_and_evaluate(
    _config(mnist_dirs, k), str(tmp_path / 'resumed')
  )
  assert int(first.step) == k
  resumed = train.train_and_evaluate(
    _config(mnist_dirs, 2 * k), str(tmp_path / 'resumed')
  )
  assert int(resumed.step) == int(straight.step) == 2 * k
  for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert any(
    np.any(np.asarray(a) != np.asarray(b))
    for a, b in zip(
      jax.tree.leaves(first.g_params), jax.tree.leaves(resumed.g_params)
    )
  )
  # Each start records where it ran and the conv form `auto` chose.
  starts = [
    json.loads(line)
    for line in (tmp_path / 'resumed' / 'environment.jsonl').open()
  ]
  assert [s['step'] for s in starts] == [0, k]
  assert all(s['backend'] == 'cpu' and s['devices'] == 4 for s in starts)
  assert starts[0]['model']['g']['conv'] == 'gemm'
  assert starts[0]['model']['d']['conv'] == 'gemm'


def test_launch_smoke_writes_run_directory_and_says_what_it_does(
  mnist_dirs, lenet_cache, tmp_path
):
  """The main job's smoke run end to end: its files, and the lines it
  prints before each long phase and at the end (captured; nothing is
  timed)."""
  manual_dir, data_dir = mnist_dirs
  workdir, cache, loss = tmp_path / 'run', lenet_cache, 'minimax'
  cmd = [
    sys.executable,
    'launch.py',
    f'--config=experiments/mnist_dcgan.py:loss={loss},smoke',
    f'--workdir={workdir}',
    f'--config.data.manual_dir={manual_dir}',
    f'--config.data.data_dir={data_dir}',
    f'--config.eval.cache_dir={cache}',
  ]
  out = subprocess.run(
    cmd, cwd=REPO, check=True, timeout=600, capture_output=True, text=True
  )
  said = out.stdout.splitlines()
  phases = [
    'preparing the evaluation',
    'training run from step 0 to 20',
    'run step 20: fd ',
    f'run directory: {workdir}',
    '  step 20: fd ',
    '  best: step 20 by fd',
  ]
  at = [next(i for i, l in enumerate(said) if l.startswith(p)) for p in phases]
  assert at == sorted(at), said
  assert 'OpenCV' not in out.stderr
  config = json.loads((workdir / 'config.json').read_text())
  assert config['loss'] == loss
  rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').open()]
  evals = [r for r in rows if 'eval/fd' in r]
  rows = [r for r in rows if 'eval/fd' not in r]
  assert [r['step'] for r in rows] == [10, 20]
  assert [r['step'] for r in evals] == [20]  # eval.every=0: at the end
  for r in rows:
    for key in (
      'd_loss',
      'g_loss',
      'd_real',
      'd_fake',
      'rt',
      'd_grad_norm',
      'g_grad_norm',
      'steps_per_sec',
      'images_per_sec',
    ):
      assert np.isfinite(r[key]), (key, r)
    assert 0 < r['d_real'] < 1 and 0 < r['d_fake'] < 1
  assert (workdir / 'samples' / 'step_000020.png').exists()
  assert (workdir / 'checkpoints' / '20').is_dir()
  assert list(workdir.glob('events.out.tfevents.*'))
  results = json.loads((workdir / 'results.json').read_text())
  assert results['step'] == 20
  scores = {
    'fd',
    'kid',
    'kid_std',
    'precision',
    'recall',
    'density',
    'coverage',
    'is',
    'is_std',
  }
  # D's overfitting probe (eval.d_images) beside the scores of G's samples.
  assert set(results['metrics']) == scores | set(overfitting.SCALARS)
  assert results['metrics']['fd'] == evals[0]['eval/fd'] > 0
  assert results['metrics']['d_train'] == evals[0]['eval/d_train']
  # The protocol's scale: 200 real training images scored the same way.
  assert set(results['real_data']) == scores
  assert 0 < results['real_data']['fd'] < results['metrics']['fd']
  assert list(pathlib.Path(cache, 'real_data').glob('*.json'))
  assert results['protocol']['num_samples'] == 200
  assert 'LeNet, 300 steps' in results['protocol']['feature_net']
  assert results['best']['step'] == 20
  assert (workdir / 'best_checkpoint' / '20').is_dir()
