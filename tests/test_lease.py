"""One writer per run: the lease of a run directory, and sweeps that meet."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import pytest

from gan_jax import errors, lease, rundir

REPO = pathlib.Path(__file__).resolve().parents[1]


def _hold(directory):
  """A subprocess holding `directory`'s lease until it is killed."""
  proc = subprocess.Popen(
    [
      sys.executable,
      '-c',
      'import sys, time; from gan_jax import lease; '
      f'lease.Lease({str(directory)!r}).acquire(); print(1, flush=True); '
      'time.sleep(600)',
    ],
    cwd=REPO,
    stdout=subprocess.PIPE,
    text=True,
  )
  assert proc.stdout.readline().strip() == '1'
  return proc


def test_a_lease_names_its_holder_and_dies_with_it(tmp_path):
  workdir = tmp_path / 'a' / 'run'
  proc = _hold(workdir)
  try:
    held = lease.holder(str(workdir))
    assert held['pid'] == proc.pid and held['host'] == socket.gethostname()
    with pytest.raises(errors.LeaseHeld, match=f'process {proc.pid} on '):
      lease.Lease(str(workdir)).acquire()
  finally:
    proc.kill()
    proc.wait()
  assert lease.holder(str(workdir)) is None  # the kernel dropped its flock
  with lease.Lease(str(workdir)):
    assert lease.holder(str(workdir))['pid'] == os.getpid()
  assert not (workdir / rundir.LEASE).exists()  # released
  fresh = tmp_path / 'b' / 'run'
  with lease.Lease(str(fresh)):
    assert fresh.is_dir()
  assert not (tmp_path / 'b').exists()  # nothing written: nothing left


def _record(workdir, host, pid, age):
  """A lease file left by `host`'s process `pid`, its heartbeat `age` s old
  and no flock held: what a holder on a host whose flock does not reach
  this one looks like."""
  workdir.mkdir(parents=True, exist_ok=True)
  path = workdir / rundir.LEASE
  path.write_text(json.dumps({'host': host, 'pid': pid, 'since': 'then'}))
  os.utime(path, (time.time() - age, time.time() - age))


def test_a_holder_elsewhere_is_alive_while_its_heartbeat_is_fresh(tmp_path):
  workdir = tmp_path / 'run'
  _record(workdir, 'node-7', 123, age=lease.BEAT)
  with pytest.raises(errors.LeaseHeld, match='process 123 on node-7'):
    lease.Lease(str(workdir)).acquire()
  _record(workdir, 'node-7', 123, age=lease.STALE + 1)  # it died there
  assert lease.holder(str(workdir)) is None
  with lease.Lease(str(workdir)):
    pass
  # A pid of this host that does not run (above any pid_max): stale.
  _record(workdir, socket.gethostname(), 2**22 + 1, age=0)
  with lease.Lease(str(workdir)):
    pass


def _launch(workdir, num_steps, **kwargs):
  return subprocess.Popen(
    [
      sys.executable,
      'launch.py',
      '--config=experiments/toy_ring.py:smoke',
      f'--workdir={workdir}',
      f'--config.num_steps={num_steps}',
      '--config.checkpoint_every=100',
      '--config.log_every=100',
      '--config.eval.every=0',
    ],
    cwd=REPO,
    env=dict(os.environ, JAX_NUM_CPU_DEVICES='4'),
    text=True,
    **kwargs,
  )


def _listing(workdir) -> dict:
  """Every file under `workdir` with its size."""
  return {
    str(p.relative_to(workdir)): p.stat().st_size
    for p in sorted(workdir.rglob('*'))
    if p.is_file()
  }


def test_a_second_launch_into_a_held_run_writes_nothing(tmp_path):
  """Two launches into one workdir: the second ends in one line naming the
  first and writes nothing; once the first is SIGKILLed, the same command
  resumes from its checkpoint."""
  workdir = tmp_path / 'run'
  first = _launch(workdir, 10**6, stdout=subprocess.DEVNULL)
  ckpts = workdir / rundir.CHECKPOINTS
  deadline = time.time() + 240
  while not any(p.name.isdigit() for p in ckpts.glob('*')):
    assert first.poll() is None and time.time() < deadline
    time.sleep(0.1)
  first.send_signal(signal.SIGSTOP)  # holds its lease, writes nothing more
  try:
    before = _listing(workdir)
    second = _launch(workdir, 300, stderr=subprocess.PIPE)
    _, err = second.communicate(timeout=240)
    assert second.returncode == 1
    assert err.strip().splitlines() == [
      f'error: {workdir} is being written by process {first.pid} on '
      f'{socket.gethostname()} (since {lease.holder(str(workdir))["since"]})'
      '; wait for it to end (or stop it), then rerun the same command.'
    ]
    assert _listing(workdir) == before
  finally:
    first.kill()
    first.wait()
  rerun = _launch(workdir, 300, stdout=subprocess.DEVNULL)
  assert rerun.wait(timeout=240) == 0
  starts = (workdir / rundir.ENVIRONMENT).read_text().splitlines()
  assert [json.loads(s)['step'] > 0 for s in starts] == [False, True]
  assert lease.holder(str(workdir)) is None
  assert not (workdir / rundir.LEASE).exists()


STUDY = """
from experiments import toy_ring
from gan_jax import hyper


def get_config(arg=None):
  c = toy_ring.get_config('smoke')
  c.num_steps = 200
  c.steps_per_dispatch = c.log_every = c.sample_every = 50
  c.checkpoint_every = 100
  c.eval.every = 0
  return c


def get_hyper(arg=None):
  return hyper.product(
    [hyper.sweep('loss', ['non_saturating', 'hinge']), hyper.sweep('seed', [0])]
  )
"""


def test_two_parallel_sweeps_over_one_directory_train_each_point_once(
  tmp_path,
):
  (tmp_path / 'study.py').write_text(STUDY)
  directory = tmp_path / 'sweep'
  cmd = [
    sys.executable,
    str(REPO / 'launch.py'),
    '--config=study.py',
    f'--workdir={directory}',
    '--sweep',
    '--parallel=2',
  ]
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_NUM_CPU_DEVICES='1')
  procs = []
  for _ in range(2):
    procs.append(
      subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
      )
    )
    time.sleep(3)
  outs = [p.communicate(timeout=600)[0] for p in procs]
  assert [p.returncode for p in procs] == [0, 0], outs
  index = json.loads((directory / rundir.SWEEP_INDEX).read_text())
  assert [p['state'] for p in index['points']] == ['done'] * 2
  for point in index['points']:
    starts = (directory / point['workdir'] / rundir.ENVIRONMENT).read_text()
    assert len(starts.splitlines()) == 1, point['name']  # trained once
  assert ', 0 done, 2 to run' in outs[1]  # it met the first one's points
