"""Sweeps: expansion, end-to-end runs, resume after an interruption, index."""

import json
import os
import signal

import pytest

from gan_jax import checkpoint, config as config_lib, hyper, sweep
from gan_jax import errors, rundir, writers

# A 4-point study on the toy ring: 2 losses x 2 seeds, 100 steps each.
STUDY = """
from experiments import toy_ring
from gan_jax import hyper


def get_config(arg=None):
  c = toy_ring.get_config('smoke')
  c.num_steps = 100
  c.steps_per_dispatch = c.log_every = c.sample_every = 50
  c.checkpoint_every = 50
  c.eval.every = 0  # evaluate at the end only
  return c


def get_hyper(arg=None):
  losses = ['non_saturating', 'hinge'] if arg != 'seeds' else ['hinge']
  return hyper.product(
    [hyper.sweep('loss', losses), hyper.sweep('seed', [0, 1])]
  )
"""


@pytest.fixture
def study(tmp_path):
  path = tmp_path / 'study.py'
  path.write_text(STUDY)
  return str(path)


def test_hyper_expands_products_and_zips():
  points = hyper.product(
    [
      hyper.zipit(
        [hyper.sweep('loss', ['a', 'b']), hyper.sweep('d_steps', [1, 5])]
      ),
      hyper.fixed('num_steps', 7),
      hyper.sweep('seed', range(3)),
    ]
  )
  assert len(points) == 6
  assert points[0] == {'loss': 'a', 'd_steps': 1, 'num_steps': 7, 'seed': 0}
  assert points[4] == {'loss': 'b', 'd_steps': 5, 'num_steps': 7, 'seed': 1}
  with pytest.raises(ValueError, match='one length'):
    hyper.zipit([hyper.sweep('a', [1]), hyper.sweep('b', [1, 2])])
  with pytest.raises(ValueError, match='seed twice'):
    hyper.product([hyper.sweep('seed', [0]), hyper.sweep('seed', [1])])


def test_names_groups_and_overrides():
  point = {'loss': 'hinge', 'optim.lr': 1e-4, 'seed': 2}
  assert sweep.point_name(point) == 'loss=hinge,optim.lr=0.0001,seed=2'
  assert sweep.group_name(point) == 'loss=hinge,optim.lr=0.0001'
  seeds = {'data.train_fraction': 0.1, 'seed': 1, 'data.subset_seed': 1}
  assert sweep.group_name(seeds) == 'data.train_fraction=0.1'
  base = config_lib.base_config()
  base.model.d.norm = 'batch'
  c = sweep.apply(base, {'d_weight_clip': 0.05, 'loss': 'wasserstein'})
  # The loss's defaults come first (layer norm is not asked for by
  # 'wasserstein'), then the point's own fields win over them.
  assert (c.loss, c.d_weight_clip, c.optim.lr) == ('wasserstein', 0.05, 2e-4)
  assert sweep.apply(base, {'loss': 'wasserstein'}).d_weight_clip == 0.01
  assert base.loss == 'non_saturating'  # the base is not changed
  with pytest.raises(errors.ConfigError, match='config.optim.nope'):
    sweep.apply(base, {'optim.nope': 1})


def _check_index(directory):
  """sweep.json against the run directories themselves; returns it."""
  with open(os.path.join(directory, rundir.SWEEP_INDEX)) as f:
    index = json.load(f)
  for p in index['points']:
    workdir = os.path.join(directory, p['workdir'])
    steps = checkpoint.committed_steps(os.path.join(workdir, 'checkpoints'))
    assert p['step'] == max(steps, default=0)
    num_steps = index['base']['num_steps']
    expected = (
      'done'
      if p['step'] >= num_steps
      else 'partial'
      if p['step']
      else 'pending'
    )
    assert p['state'] == expected
    if expected == 'pending':
      continue
    with open(os.path.join(workdir, 'config.json')) as f:
      config = json.load(f)
    for field, value in p['overrides'].items():
      node = config
      for key in field.split('.'):
        node = node[key]
      assert node == value, (p['name'], field)
    if p['state'] == 'done':
      with open(os.path.join(workdir, 'results.json')) as f:
        assert p['results'] == json.load(f)['metrics']
  return index


def _rows(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def test_sweep_runs_resumes_after_interruption_and_indexes(
  study, tmp_path, monkeypatch
):
  out = str(tmp_path / 'sweep')
  # SIGTERM the second point at its step-50 log, as a scheduler would.
  scalars = writers.MetricWriter.scalars

  def preempting(self, step, values):
    scalars(self, step, values)
    if (
      step == 50
      and 'hinge' in self._jsonl.name
      and 'seed=0' in (self._jsonl.name)
    ):
      signal.raise_signal(signal.SIGTERM)

  monkeypatch.setattr(writers.MetricWriter, 'scalars', preempting)
  with pytest.raises(errors.Interrupted):
    sweep.run(out, study, {})
  index = _check_index(out)
  assert [p['state'] for p in index['points']] == [
    'done',
    'done',
    'partial',
    'pending',
  ]
  assert [p['name'] for p in index['points']] == [
    'loss=non_saturating,seed=0',
    'loss=non_saturating,seed=1',
    'loss=hinge,seed=0',
    'loss=hinge,seed=1',
  ]
  assert index['points'][2]['group'] == 'loss=hinge'
  assert index['points'][2]['step'] == 50
  monkeypatch.setattr(writers.MetricWriter, 'scalars', scalars)
  first = os.path.join(out, index['points'][0]['workdir'])
  rows_before = _rows(first)

  index = sweep.run(out, study, {})  # the same command again: resume
  assert [p['state'] for p in index['points']] == ['done'] * 4
  assert _check_index(out) == index
  assert _rows(first) == rows_before  # a done point is not run again
  resumed = _rows(os.path.join(out, 'loss=hinge,seed=0'))
  train_steps = [r['step'] for r in resumed if 'd_loss' in r]
  assert train_steps == [50, 100]  # continued from its step-50 checkpoint
  # Another sweep's command in the same directory is refused; more steps
  # reopen every point to be resumed.
  with pytest.raises(errors.ConfigError, match='rerun that command'):
    sweep.run(out, study, {'d_steps': 2})
  longer = sweep.Sweep(out, study, {'num_steps': 200})
  assert [longer.state(i) for i in range(4)] == [('partial', 100)] * 4


def test_vmap_launcher_matches_sequential_points(study, tmp_path):
  seq = sweep.run(str(tmp_path / 'seq'), study + ':seeds', {})
  vm = sweep.run(str(tmp_path / 'vm'), study + ':seeds', {}, launcher='vmap')
  assert [p['state'] for p in vm['points']] == ['done', 'done']
  _check_index(str(tmp_path / 'vm'))
  for a, b in zip(seq['points'], vm['points']):
    assert a['name'] == b['name']
    for k, v in a['results'].items():
      assert b['results'][k] == pytest.approx(v, rel=1e-3, abs=1e-3), k


def test_submitit_local_launcher_runs_every_point(study, tmp_path):
  out = str(tmp_path / 'sweep')
  index = sweep.run(out, study + ':seeds', {}, launcher='submitit_local')
  assert [p['state'] for p in index['points']] == ['done', 'done']
  _check_index(out)
  assert os.path.isdir(os.path.join(out, '.submitit'))


def test_sweep_without_get_hyper_is_refused(tmp_path):
  path = tmp_path / 'plain.py'
  path.write_text(STUDY.split('def get_hyper')[0])
  with pytest.raises(errors.ConfigError, match='no get_hyper'):
    sweep.run(str(tmp_path / 'out'), str(path), {})
  assert not os.path.exists(tmp_path / 'out')


def test_study_smoke_sweep_runs_end_to_end_and_reports(tmp_path):
  from gan_jax import report  # pylint: disable=g-import-not-at-top

  study = os.path.join(
    os.path.dirname(__file__), '..', 'experiments', 'mode_collapse.py'
  )
  out = str(tmp_path / 'mode_collapse')
  index = sweep.run(out, study + ':smoke', {}, launcher='vmap')
  assert len(index['points']) == 4
  assert {p['state'] for p in index['points']} == {'done'}
  _check_index(out)
  paths = report.main([out])
  with open(os.path.join(out, 'report', 'results.csv')) as f:
    lines = f.read().splitlines()
  # header, one row per group (2 seeds each), the protocol's real data
  assert len(lines) == 1 + 2 + 1
  assert 'modes_mean' in lines[0] and lines[-1].startswith('real data,')
  assert any(p.endswith('samples.png') for p in paths)


def test_point_folder_holding_another_run_is_refused(study, tmp_path):
  point = tmp_path / 'out' / 'loss=hinge,seed=1'
  point.mkdir(parents=True)
  (point / 'config.json').write_text(json.dumps({'seed': 7}))
  with pytest.raises(errors.ConfigError, match='another config'):
    sweep.run(str(tmp_path / 'out'), study, {})
  assert os.listdir(tmp_path / 'out') == ['loss=hinge,seed=1']
