"""Losing no work: SIGTERM saves and resumes exactly, a full disk ends the
run in one line and resumes exactly; finished runs and changed configs are
left untouched."""

import errno
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from gan_jax import checkpoint, rundir, train
from gan_jax import errors
from experiments import toy_ring

REPO = pathlib.Path(__file__).resolve().parents[1]
OVERRIDES = {'checkpoint_every': 100_000, 'sample_every': 100_000}


def _toy_launch(workdir, overrides):
  """(command, environment) of a 4-device toy_ring smoke run via launch.py."""
  cmd = [
    sys.executable,
    'launch.py',
    '--config=experiments/toy_ring.py:smoke',
    f'--workdir={workdir}',
  ]
  cmd += [f'--config.{k}={v}' for k, v in overrides.items()]
  return cmd, dict(os.environ, JAX_NUM_CPU_DEVICES='4')


def _config(num_steps):
  config = toy_ring.get_config('smoke')
  config.update(OVERRIDES, num_steps=num_steps)
  return config


def test_sigterm_saves_current_step_and_resume_is_exact(
  tmp_path, stop_with_sigterm
):
  """SIGTERM mid-run: exit within 60 s with a checkpoint at the last step N;
  resuming to N + 100 equals an uninterrupted run of N + 100 steps, bitwise
  (same 4-device program, every step's randomness from fold_in(rng, step))."""
  workdir = tmp_path / 'interrupted'
  cmd, env = _toy_launch(workdir, {**OVERRIDES, 'num_steps': 100_000})
  code, n, _ = stop_with_sigterm(cmd, workdir, env)
  assert code == 1
  assert (workdir / 'checkpoints' / str(n)).is_dir()

  resumed = train.train_and_evaluate(_config(n + 100), str(workdir))
  straight = train.train_and_evaluate(_config(n + 100), str(tmp_path / 's'))
  assert int(resumed.step) == int(straight.step) == n + 100
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_finished_run_is_reported_and_left_alone(tmp_path, capsys):
  train.train_and_evaluate(_config(100), str(tmp_path))
  before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob('*')}
  state = train.train_and_evaluate(_config(100), str(tmp_path))
  assert int(state.step) == 100
  assert 'finished at step 100' in capsys.readouterr().out
  assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob('*')} == before


def test_sigterm_during_the_last_hooks_finishes_the_run_then_stops(
  tmp_path, monkeypatch
):
  """A signal while the final evaluation runs keeps the finished run
  (results.json) and still raises Interrupted, so a sweep stops too."""
  hooks = train._hooks

  def hooks_then_signal(run, state, step, last, due_ckpt):
    if last:
      os.kill(os.getpid(), signal.SIGTERM)  # handled by train.preemption
    hooks(run, state, step, last, due_ckpt)

  monkeypatch.setattr(train, '_hooks', hooks_then_signal)
  with pytest.raises(errors.Interrupted, match='finished at step 100, then'):
    train.train_and_evaluate(_config(100), str(tmp_path))
  assert (tmp_path / 'results.json').exists()
  monkeypatch.setattr(train, '_hooks', hooks)
  state = train.train_and_evaluate(_config(100), str(tmp_path))
  assert int(state.step) == 100


def test_changed_config_is_refused_unless_allowed(tmp_path):
  train.train_and_evaluate(_config(50), str(tmp_path))
  saved = (tmp_path / 'config.json').read_text()
  changed = _config(100)
  changed.optim.lr = 1e-3
  with pytest.raises(errors.ConfigError, match=r'optim\.lr differ'):
    train.train_and_evaluate(changed, str(tmp_path))
  assert (tmp_path / 'config.json').read_text() == saved
  state = train.train_and_evaluate(
    changed, str(tmp_path), allow_config_change=True
  )
  assert int(state.step) == 100
  assert (
    json.loads((tmp_path / 'config.json').read_text())['optim']['lr'] == 1e-3
  )


def test_corrupt_newest_checkpoint_is_skipped(tmp_path, caplog):
  """A step directory with a damaged file is skipped with a warning naming
  it; the run resumes from the previous checkpoint and ends equal to an
  uninterrupted run (bitwise)."""
  config = _config(200)
  config.checkpoint_every = 100
  train.train_and_evaluate(config, str(tmp_path / 'run'))
  newest = tmp_path / 'run' / 'checkpoints' / '200'
  for path in newest.rglob('*'):
    if path.is_file() and path.stat().st_size > 0 and 'ocdbt' in path.name:
      path.write_bytes(path.read_bytes()[:7])  # truncate
  config.num_steps = 300
  resumed = train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert str(newest) in caplog.text and 'skipping' in caplog.text
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_no_usable_checkpoint_is_one_clear_error(tmp_path):
  config = _config(100)
  train.train_and_evaluate(config, str(tmp_path))
  for path in (tmp_path / 'checkpoints').rglob('*'):
    if path.is_file() and 'ocdbt' in path.name:
      path.unlink()
  config.num_steps = 200
  with pytest.raises(Exception, match='no usable checkpoint') as e:
    train.train_and_evaluate(config, str(tmp_path))
  assert 'Move that folder away' in str(e.value)


def test_sigkill_at_random_points_then_resume_matches(tmp_path):
  """Fault injection: SIGKILL a run 5 times at random instants (checkpoints
  are saved every dispatch, so kills land inside saves too) and rerun it
  each time; the finished run equals an uninterrupted one, bitwise."""
  rng = np.random.default_rng(0)
  workdir = tmp_path / 'killed'
  overrides = {
    'num_steps': 1000,  # far past where the kills land (1.5 s after a row)
    'checkpoint_every': 50,
    'log_every': 50,
    'sample_every': 1000,
    'keep_checkpoints': 2,
  }
  cmd, env = _toy_launch(workdir, overrides)
  kills = in_save = 0
  ckpts = workdir / 'checkpoints'
  for trial in range(5):
    proc = subprocess.Popen(
      cmd,
      cwd=REPO,
      env=env,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.DEVNULL,
    )
    # Wait until training has started (a row past the resumed step), then
    # kill after a random delay.
    metrics = workdir / 'metrics.jsonl'
    rows = metrics.read_text().count('\n') if metrics.exists() else 0
    deadline = time.time() + 120
    while (metrics.read_text().count('\n') if metrics.exists() else 0) <= rows:
      if proc.poll() is not None or time.time() > deadline:
        break
      time.sleep(0.05)
    if trial < 2:  # kill inside a save: as soon as a temporary dir appears
      while proc.poll() is None and time.time() < deadline:
        if any('tmp' in p.name for p in ckpts.glob('*')):
          break
        time.sleep(0.002)
    else:
      time.sleep(rng.uniform(0, 1.5))
    if proc.poll() is None:
      proc.send_signal(signal.SIGKILL)
      kills += 1
    proc.wait()
    in_save += any('tmp' in p.name for p in ckpts.glob('*'))
  assert kills >= 3  # the run must really have been interrupted
  assert in_save >= 1  # and at least once in the middle of a save
  subprocess.run(
    cmd,
    cwd=REPO,
    env=env,
    check=True,
    timeout=300,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )

  config = toy_ring.get_config('smoke')
  config.update(overrides)
  resumed = train.train_and_evaluate(config, str(workdir))  # finished: loads
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  assert int(resumed.step) == int(straight.step) == 1000
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_diverging_lr_stops_run_and_keeps_finite_checkpoints(tmp_path):
  config = _config(100)
  config.checkpoint_every = 100
  train.train_and_evaluate(config, str(tmp_path))
  config.num_steps = 300
  config.optim.lr = 1e38  # Adam steps of ~lr overflow float32 at once
  with pytest.raises(errors.TrainingDiverged, match='step 200: ') as e:
    train.train_and_evaluate(config, str(tmp_path), allow_config_change=True)
  assert 'non-finite' in str(e.value) and 'optim.lr' in str(e.value)
  steps = sorted(int(p.name) for p in (tmp_path / 'checkpoints').iterdir())
  assert steps == [100]  # nothing non-finite was saved
  config.optim.lr = 1e-4
  state = train.train_and_evaluate(  # the kept checkpoint is whole and finite
    config, str(tmp_path), allow_config_change=True
  )
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state))


# launch.py where every write fails (the file size limit at 0: EFBIG, as
# ENOSPC on a full disk) from the save of step {step} until the run has
# closed its checkpoint manager: the records before and after are whole.
_FULL_DISK = """
import resource, runpy, sys
from gan_jax import checkpoint
save, close = checkpoint.save, checkpoint.close
def limit(size):
  resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
def failing_save(mngr, step, state, force=False):
  if step == {step} and mngr.directory.name == 'checkpoints':
    mngr.wait_until_finished()  # the previous save is whole
    limit(0)
  save(mngr, step, state, force=force)
def close_then_free(mngr):
  try:
    close(mngr)
  finally:
    limit(resource.RLIM_INFINITY)
checkpoint.save, checkpoint.close = failing_save, close_then_free
sys.argv[0] = 'launch.py'
runpy.run_path('launch.py', run_name='__main__')
"""


def test_failed_checkpoint_write_is_one_line_and_resume_is_exact(tmp_path):
  """The disk fills during the save of step 250 (Orbax writes it in the
  background and raises the failure at the next save, 300): the run ends
  in one line naming the folder, the OS reason and the step 200 it resumes
  from, without a traceback. The half-written step folder is never
  restored: the rerun deletes it (250.orbax-checkpoint-tmp) and skips a
  copy under the step's own name, as a filesystem without atomic renames
  leaves it (Orbax lists it as a step); it ends equal to an uninterrupted
  run, bitwise."""
  workdir = tmp_path / 'full'
  overrides = {
    'num_steps': 400,
    'checkpoint_every': 50,
    'log_every': 200,
    'eval.every': 200,
    'sample_every': 100_000,
  }
  cmd, env = _toy_launch(workdir, overrides)
  failing = [sys.executable, '-c', _FULL_DISK.format(step=250), *cmd[2:]]
  r = subprocess.run(
    failing, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
  )
  ckpts = workdir / 'checkpoints'
  assert r.returncode == 1
  for noise in ('Traceback', 'Exception', 'Event loop is closed'):
    assert noise not in r.stderr, r.stderr[-3000:]
  assert not re.search(r'^E\d{4} ', r.stderr, re.M), r.stderr[-3000:]  # absl
  assert r.stderr.strip().splitlines()[-1] == (
    f'error: cannot write {ckpts}: File too large; the newest complete '
    f'checkpoint is step 200 in {ckpts}. Fix that, then rerun the same '
    'command to resume.'
  )
  assert checkpoint.committed_steps(str(ckpts)) == [100, 150, 200]
  partial = ckpts / '250.orbax-checkpoint-tmp'
  assert partial.is_dir()
  shutil.copytree(partial, ckpts / '250')

  r = subprocess.run(
    cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300
  )
  assert r.returncode == 0, r.stderr[-3000:]
  assert f'skipping unreadable checkpoint {ckpts / "250"}' in r.stderr
  assert f'resumed from step 200 in {ckpts}' in r.stdout
  assert not partial.exists()
  assert [p.name[:4] for p in (workdir / 'corrupt_checkpoints').iterdir()] == [
    '250_'
  ]
  config = toy_ring.get_config('smoke')
  config.update({k: v for k, v in overrides.items() if '.' not in k})
  config.eval.every = overrides['eval.every']
  resumed = train.train_and_evaluate(config, str(workdir))  # finished: loads
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  assert int(resumed.step) == int(straight.step) == 400
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  results = [
    rundir.read_results(str(w))['metrics']
    for w in (workdir, tmp_path / 'straight')
  ]
  assert results[0] == results[1]


def test_failed_record_write_is_one_error_and_resume_is_exact(
  tmp_path, monkeypatch
):
  """A sample picture that cannot be written (the disk is full) at step
  150 ends the run with WriteFailed naming the file, the full disk and the
  newest complete checkpoint (100; 150 is saved after the pictures); the
  rerun ends equal to an uninterrupted run, bitwise."""
  config = _config(200)
  config.checkpoint_every = config.sample_every = 50
  workdir = tmp_path / 'run'
  save_png = rundir.save_png

  def full_disk(path, grid):
    if rundir.sample_step(path) == 150:
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    save_png(path, grid)

  monkeypatch.setattr(rundir, 'save_png', full_disk)
  with pytest.raises(errors.WriteFailed) as e:
    train.train_and_evaluate(config, str(workdir))
  ckpts = workdir / 'checkpoints'
  assert str(e.value) == (
    f'cannot write {rundir.sample_path(str(workdir), 150)}: the disk is '
    f'full (No space left on device); the newest complete checkpoint is '
    f'step 100 in {ckpts}. Free space, then rerun the same command to '
    'resume.'
  )
  monkeypatch.undo()
  resumed = train.train_and_evaluate(config, str(workdir))
  straight = train.train_and_evaluate(config, str(tmp_path / 'straight'))
  assert int(resumed.step) == int(straight.step) == 200
  for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize(
  'args, message',
  [
    (
      ['--config=experiments/toy_ring.py:loss=saturating,smoke'],
      "error: unknown loss 'saturating'; valid: non_saturating, dragan,",
    ),
    (
      ['--config=experiments/toy_ring.py:smoke', '--config.batch_size=30'],
      'error: config.batch_size=30 is not divisible by the 4 devices',
    ),
    (
      ['--config=experiments/toy_ring.py:smoke', '--config.batch_size=abc'],
      'flag --config.batch_size=abc: invalid literal for int()',
    ),
    (
      [
        '--config=experiments/mnist_dcgan.py:smoke',
        '--config.data.manual_dir={tmp}/nowhere',
        '--config.data.data_dir={tmp}',
      ],
      'error: data.manual_dir={tmp}/nowhere is not a folder. Create it and put',
    ),
    (
      ['--config=experiments/toy_ring.py:smoke', '--workdir={tmp}/file/run'],
      'error: cannot write to workdir {tmp}/file/run',
    ),
  ],
)
def test_bad_input_is_one_line_without_traceback(tmp_path, args, message):
  (tmp_path / 'file').write_text('')
  args = [a.format(tmp=tmp_path) for a in args]
  if not any(a.startswith('--workdir') for a in args):
    args.append(f'--workdir={tmp_path}/run')
  r = subprocess.run(
    [sys.executable, 'launch.py', *args],
    cwd=REPO,
    env=dict(os.environ, JAX_NUM_CPU_DEVICES='4'),
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert r.returncode != 0
  assert 'Traceback' not in r.stderr, r.stderr[-3000:]
  assert message.format(tmp=tmp_path) in r.stderr, r.stderr[-3000:]
  assert not (tmp_path / 'run').exists()  # nothing half-written


def _two_processes(workdir, overrides=()):
  """Runs toy_ring's smoke config as 2 processes x 2 CPU devices (gloo
  collectives) through launch.py; returns each process's stderr."""
  import socket  # pylint: disable=g-import-not-at-top

  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  env = dict(os.environ, JAX_NUM_CPU_DEVICES='2')
  procs = [
    subprocess.Popen(
      [
        sys.executable,
        'launch.py',
        '--config=experiments/toy_ring.py:smoke',
        f'--workdir={workdir}',
        f'--coordinator_address=127.0.0.1:{port}',
        '--num_processes=2',
        f'--process_id={i}',
        *overrides,
      ],
      cwd=REPO,
      env=env,
      stdout=subprocess.DEVNULL,
      stderr=subprocess.PIPE,
      text=True,
    )
    for i in range(2)
  ]
  errs = []
  for p in procs:
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
    errs.append(err)
  return errs


def test_two_processes_match_one_and_agree_on_damaged_checkpoints(tmp_path):
  """jax.distributed: 2 processes x 2 CPU devices (gloo collectives) train
  the same run as 1 process x 4 devices: one global `data` mesh, each
  process feeding its shard, process 0 writing. With the newest checkpoint
  damaged, both processes resume from the same older one, and process 0
  moves the damaged one aside once. Parameters agree to 1e-5 (the
  all-reduce order differs)."""
  workdir = tmp_path / 'multi'
  _two_processes(workdir)
  rows = [json.loads(l) for l in (workdir / 'metrics.jsonl').open()]
  # Written once, by process 0: training rows and evaluation rows.
  assert [r['step'] for r in rows if 'd_loss' in r] == [100, 200]
  assert [r['step'] for r in rows if 'eval/modes' in r] == [100, 200]

  newest = workdir / 'checkpoints' / '200'
  for path in newest.rglob('*'):
    if path.is_file() and path.stat().st_size > 0 and 'ocdbt' in path.name:
      path.write_bytes(path.read_bytes()[:7])  # truncate
  errs = _two_processes(workdir, ['--config.num_steps=300'])
  for err in errs:
    assert f'skipping unreadable checkpoint {newest}' in err, err[-3000:]
    assert 'resuming from checkpoint' in err and '/checkpoints/100' in err
  assert [p.name[:4] for p in (workdir / 'corrupt_checkpoints').iterdir()] == [
    '200_'
  ]

  config = toy_ring.get_config('smoke')
  config.num_steps = 300
  multi = train.train_and_evaluate(config, str(workdir))  # finished: loads
  single = train.train_and_evaluate(config, str(tmp_path / 'single'))
  assert int(multi.step) == int(single.step) == config.num_steps
  for a, b in zip(jax.tree.leaves(multi), jax.tree.leaves(single)):
    np.testing.assert_allclose(
      np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-5
    )


def test_bad_batch_size_and_workdir_are_one_message(tmp_path):
  config = _config(100)
  config.batch_size = 30  # 4 devices do not divide it
  with pytest.raises(errors.ConfigError, match='multiple of 4'):
    train.train_and_evaluate(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()  # nothing half-written
  blocker = tmp_path / 'file'
  blocker.write_text('')
  with pytest.raises(errors.ConfigError, match='writable --workdir'):
    train.train_and_evaluate(_config(100), str(blocker / 'run'))
