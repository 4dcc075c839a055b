"""gan_jax.report on hand-made run and sweep directories (no training).

The tables must hold the mean and the sample standard deviation (ddof=1)
over seeds of the numbers in each run's results.json and last train row,
computed here from the fixture's numbers; metrics.jsonl rows repeated by a
resume count once (the last); groups keep sweep.json's order.
"""

import csv
import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gan_jax import losses, report
from gan_jax.report import read, records, stats, tables, verdict
from experiments import saturation

REPO = pathlib.Path(__file__).resolve().parents[1]

# Two groups x three seeds. Listed non_saturating first: the table must keep
# sweep.json's order, not sort the names. Per seed: (final fd, precision,
# last d_real, last d_fake).
GROUPS = {
  'non_saturating': [
    (1.0, 0.5, 0.6, 0.3),
    (2.0, 0.7, 0.7, 0.2),
    (4.0, 0.9, 0.9, 0.4),
  ],
  'minimax': [
    (10.0, 0.1, 0.8, 0.05),
    (10.0, 0.2, 0.9, 0.15),
    (13.0, 0.6, 0.95, 0.1),
  ],
}
STALE = 0.123  # a row a resumed run logged again: must not be used
FIGURES = [
  'training.png',
  'eval_distances.png',
  'eval_manifold.png',
  'finals.png',
  'samples.png',
]


def _stdev(xs):
  """Sample standard deviation, ddof=1, written out."""
  m = sum(xs) / len(xs)
  return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _write_run(path, loss, seed, fd, precision, d_real, d_fake):
  """A run directory as train.py writes it, with a resumed step 20."""
  (path / 'samples').mkdir(parents=True)
  config = {
    'loss': loss,
    'seed': seed,
    'num_steps': 20,
    'optim': {'lr': 2e-4, 'b1': 0.5},
    'data': {'name': 'mnist'},
    'eval': {'best_metric': 'fd', 'metrics': 'fd,pr'},
  }
  (path / 'config.json').write_text(json.dumps(config))

  def train(step, d_real, d_fake):
    return {
      'step': step,
      'd_loss': 1.0 + seed,
      'g_loss': 0.5 * step,
      'd_real': d_real,
      'd_fake': d_fake,
      'd_grad_norm': 0.1 * (seed + 1),
      'g_grad_norm': 2.0,
      'steps_per_sec': 10.0,
      'images_per_sec': 640.0,
    }

  def evals(step, fd, precision):
    return {
      'step': step,
      'eval/fd': fd,
      'eval/precision': precision,
      'eval/seconds': 0.5,
    }

  rows = [
    train(10, 0.5, 0.5),
    evals(10, 2 * fd, precision / 2),
    train(20, STALE, STALE),  # then the run was stopped and resumed:
    evals(20, STALE, STALE),
    train(20, d_real, d_fake),
    evals(20, fd, precision),
  ]
  (path / 'metrics.jsonl').write_text(
    ''.join(json.dumps(r) + '\n' for r in rows)
  )
  results = {
    'step': 20,
    'metrics': {'fd': fd, 'precision': precision},
    'real_data': {'fd': 0.25, 'precision': 0.75},
    'protocol': {'num_samples': 100, 'reference': 'mnist test (10000)'},
    'seconds': 0.5,
    'best': {'metric': 'fd', 'step': 20, 'value': fd},
  }
  (path / 'results.json').write_text(json.dumps(results))
  image = np.full((10, 12), 40 * seed, np.uint8)
  Image.fromarray(image).save(path / 'samples' / 'step_000010.png')
  Image.fromarray(255 - image).save(path / 'samples' / 'step_000020.png')


@pytest.fixture
def sweep_dir(tmp_path):
  """sweep.json with 2 groups x 3 seeds, plus a pending point with no dir."""
  root = tmp_path / 'sweep'
  points = []
  for loss, seeds in GROUPS.items():
    for seed, values in enumerate(seeds):
      name = f'loss={loss},seed={seed}'
      _write_run(root / name, loss, seed, *values)
      points.append(
        {
          'name': name,
          'overrides': {'loss': loss, 'seed': seed},
          'group': f'loss={loss}',
          'workdir': name,
          'state': 'done',
          'step': 20,
          'error': None,
          'results': {'fd': 999.0},  # the report reads the run dirs
        }
      )
  points.append(
    {
      'name': 'loss=minimax,seed=3',
      'overrides': {'loss': 'minimax', 'seed': 3},
      'group': 'loss=minimax',
      'workdir': 'loss=minimax,seed=3',
      'state': 'pending',
      'step': None,
      'error': None,
      'results': None,
    }
  )
  sweep = {'config': 'experiments/x.py:smoke', 'base': {}, 'points': points}
  (root / 'sweep.json').write_text(json.dumps(sweep))
  return root


def _groups_only(rows, real):
  """The rows, or without the 'real data' rows that close each table."""
  return rows if real else [r for r in rows if r['group'] != 'real data']


def _csv(path, real=False):
  with open(path, newline='') as f:
    return _groups_only(list(csv.DictReader(f)), real)


def _md(path, real=False):
  """report.md's results table (the one with n_eval) as a list of {header
  without its unit: cell}."""
  (table,) = [t for t in _md_tables(path) if t and 'n_eval' in t[0]]
  rows = [{k.split(' (')[0]: c for k, c in row.items()} for row in table]
  return _groups_only(rows, real)


def _md_tables(path):
  """Each markdown table of the file as a list of {header: cell}."""
  tables, lines = [], []
  for line in [*path.read_text().splitlines(), '']:
    if line.startswith('|'):
      lines.append(line)
    elif lines:
      split = lambda line: [c.strip() for c in line.strip('|').split(' | ')]
      tables.append([dict(zip(split(lines[0]), split(r))) for r in lines[2:]])
      lines = []
  return tables


def _check_png(path):
  assert path.stat().st_size > 0
  with Image.open(path) as im:
    im.verify()
  with Image.open(path) as im:
    assert im.format == 'PNG' and im.width > 100 and im.height > 100


def test_last_row_of_a_step_wins(tmp_path):
  _write_run(tmp_path / 'run', 'minimax', 0, 3.0, 0.4, 0.7, 0.2)
  run = read.read_run(str(tmp_path / 'run'))
  assert [r['step'] for r in run.train] == [10, 20]
  assert [r['step'] for r in run.evals] == [10, 20]
  assert run.train[-1]['d_real'] == 0.7 and run.train[-1]['d_fake'] == 0.2
  assert run.evals[-1] == {
    'step': 20,
    'fd': 3.0,
    'precision': 0.4,
    'seconds': 0.5,
  }
  assert run.sample.endswith('step_000020.png')
  assert run.results['metrics']['fd'] == 3.0


def test_final_dots_are_joined_by_seed_only_where_each_seed_runs_once(
  sweep_dir,
):
  groups, _ = read.read_groups([str(sweep_dir)])
  by = stats.final_columns(groups, 'fd')
  assert by['loss=non_saturating'] == {  # a group each: columns by group
    s: [v[0]] for s, v in enumerate(GROUPS['non_saturating'])
  }
  assert stats.seed_linked(by)
  pooled = {'a': {0: [1.0, 2.0]}, 'b': {0: [3.0]}}  # two runs of seed 0
  assert not stats.seed_linked(pooled)
  assert not stats.seed_linked({'a': {0: [1.0]}})  # nothing to join


def test_a_search_over_settings_gets_the_expected_best_of_k_trials():
  """Two losses, each over two learning rates x two seeds: per loss, the
  expected lowest FD of k random trials among its 4 runs."""

  def run(loss, seed, fd):
    results = {'metrics': {'fd': fd, 'precision': 0.5}}
    return read.Run('r', {'loss': loss, 'seed': seed}, [], [], results, None)

  fds = {('a', 1): (4.0, 2.0), ('a', 2): (8.0, 6.0), ('b', 1): (1.0, 3.0)}
  groups = [
    read.Group(
      f'loss={loss},lr={lr}', {}, [run(loss, s, v) for s, v in enumerate(x)]
    )
    for (loss, lr), x in fds.items()
  ]
  lines = tables.best_of_table(groups)
  assert '### fd: expected lowest of k random trials' in lines
  assert '### precision: expected highest of k random trials' in lines
  row_a = next(line for line in lines if line.startswith('| a |'))
  want = [verdict.expected_best([4.0, 2.0, 8.0, 6.0], k) for k in (1, 2, 4)]
  assert row_a == '| a | 4 | ' + ' | '.join(f'{w:.4g}' for w in want) + ' |'
  assert tables.best_of_table(groups[:1] + groups[2:]) == []  # a group each


def test_results_older_than_the_last_train_step_are_not_read(tmp_path, capsys):
  """A run resumed past its end and stopped without a final evaluation
  keeps the old results.json: its numbers are not the run's last."""
  path = tmp_path / 'run'
  _write_run(path, 'minimax', 0, 3.0, 0.4, 0.7, 0.2)
  with open(path / 'metrics.jsonl', 'a') as f:
    f.write(json.dumps({'step': 30, 'd_real': 0.6, 'd_fake': 0.3}) + '\n')
  run = read.read_run(str(path))
  assert run.results is None and run.stale_results == 20
  report.main([str(path), '--out', str(tmp_path / 'out')])
  assert (
    'from step 20, before the last train step 30' in capsys.readouterr().out
  )
  (row,) = _csv(tmp_path / 'out' / 'results.csv')
  assert row['n_eval'] == '0' and 'fd_mean' not in row


def test_sweep_tables_hold_mean_and_std_over_seeds(sweep_dir, tmp_path):
  out = tmp_path / 'out'
  paths = report.main([str(sweep_dir), '--out', str(out)])
  rows, md = _csv(out / 'results.csv'), _md(out / 'report.md')
  # The protocol's real-data scores close the table, one row.
  real, md_real = (
    _csv(out / 'results.csv', True)[-1],
    _md(out / 'report.md', True)[-1],
  )
  assert real['group'] == md_real['group'] == 'real data'
  assert float(real['fd_mean']) == 0.25 and md_real['precision'] == '0.75'
  assert [r['group'] for r in rows] == [f'loss={k}' for k in GROUPS]
  assert [r['group'] for r in md] == [f'loss={k}' for k in GROUPS]
  for row, md_row, (loss, seeds) in zip(rows, md, GROUPS.items()):
    assert row['loss'] == md_row['loss'] == loss
    assert 'seed' not in row  # seeds are what a group averages over
    assert row['n'] == row['n_eval'] == md_row['n'] == '3'  # pending: no run
    assert row['step'] == '20'
    for i, name in enumerate(['fd', 'precision', 'd_real', 'd_fake']):
      xs = [s[i] for s in seeds]
      mean, std = sum(xs) / len(xs), _stdev(xs)
      assert float(row[f'{name}_mean']) == pytest.approx(mean, rel=1e-12)
      assert float(row[f'{name}_std']) == pytest.approx(std, rel=1e-12)
      md_mean, md_std = map(float, md_row[name].split(' ± '))
      assert md_mean == pytest.approx(mean, rel=1e-3)
      assert md_std == pytest.approx(std, rel=1e-3)
  # mean and std of [1, 2, 4] are 7/3 and sqrt(7/3)
  assert float(rows[0]['fd_mean']) == pytest.approx(7 / 3)
  assert float(rows[0]['fd_std']) == pytest.approx(math.sqrt(7 / 3))
  assert (
    'loss=minimax,seed=3: no run directory' in (out / 'report.md').read_text()
  )
  for name in FIGURES:
    assert str(out / name) in paths
    _check_png(out / name)
  assert not (out / 'eval_seconds.png').exists()
  assert set(paths) == {str(p) for p in out.iterdir()}
  # The eval figures' numbers: per group, metric and step, over the seeds.
  evals = _csv(out / 'evals.csv')
  for loss, seeds in GROUPS.items():
    for i, name in enumerate(['fd', 'precision']):
      scale = (2, 1) if name == 'fd' else (0.5, 1)  # step 10: 2 fd, p / 2
      for step, k in zip((10, 20), scale):
        (row,) = [
          r
          for r in evals
          if (r['group'], r['metric'], r['step'])
          == (f'loss={loss}', name, str(step))
        ]
        xs = [k * s[i] for s in seeds]
        assert float(row['mean']) == pytest.approx(sum(xs) / 3, rel=1e-12)
        assert (float(row['min']), float(row['max'])) == (min(xs), max(xs))
  # Each run's own curves, by its directory's name.
  runs = {
    (r['group'], r['run'], r['metric'], r['step']): float(r['value'])
    for r in _csv(out / 'evals_runs.csv')
  }
  expected = {
    (f'loss={loss}', f'loss={loss},seed={seed}', name, str(step)): k * s[i]
    for loss, seeds in GROUPS.items()
    for seed, s in enumerate(seeds)
    for i, name in enumerate(['fd', 'precision'])
    for step, k in zip((10, 20), (2, 1) if name == 'fd' else (0.5, 1))
  }
  assert runs == pytest.approx(expected, rel=1e-12)


def test_single_run_directory(tmp_path, capsys):
  run = tmp_path / 'run'
  _write_run(run, 'non_saturating', 0, 3.5, 0.25, 0.6, 0.4)
  paths = report.main([str(run)])
  out = run / 'report'  # the default
  printed = capsys.readouterr().out.split()
  assert printed == paths
  (row,) = _csv(out / 'results.csv')
  assert row['group'] == 'run' and row['n'] == '1'
  assert float(row['fd_mean']) == 3.5 and row['fd_std'] == ''  # 1 seed
  assert float(row['d_fake_mean']) == 0.4 and row['d_fake_std'] == ''
  (md_row,) = _md(out / 'report.md')
  assert md_row['fd'] == '3.5'
  for name in FIGURES:
    if name == 'finals.png':  # a dot per group: the table says it
      assert not (out / name).exists()
    else:
      _check_png(out / name)


def test_num_models_directory_is_one_group(tmp_path):
  for i, values in enumerate(GROUPS['minimax'][:2]):
    _write_run(tmp_path / 'k' / f'model_{i}', 'minimax', i, *values)
  report.main([str(tmp_path / 'k'), '--out', str(tmp_path / 'out')])
  (row,) = _csv(tmp_path / 'out' / 'results.csv')
  assert row['n'] == '2' and row['group'] == 'k'
  assert float(row['precision_mean']) == pytest.approx(0.15)
  assert float(row['precision_std']) == pytest.approx(_stdev([0.1, 0.2]))


def test_runs_side_by_side_show_the_differing_fields(tmp_path):
  _write_run(tmp_path / 'a', 'minimax', 0, 1.0, 0.5, 0.6, 0.3)
  _write_run(tmp_path / 'b', 'hinge', 0, 2.0, 0.5, 0.6, 0.3)
  report.main(
    [str(tmp_path / 'a'), str(tmp_path / 'b'), '--out', str(tmp_path / 'out')]
  )
  rows = _csv(tmp_path / 'out' / 'results.csv')
  assert [(r['group'], r['loss']) for r in rows] == [
    ('a', 'minimax'),
    ('b', 'hinge'),
  ]
  assert 'optim.lr' not in rows[0]  # shared fields are not columns


def test_sweep_and_run_side_by_side(sweep_dir, tmp_path):
  _write_run(tmp_path / 'solo', 'hinge', 0, 5.0, 0.5, 0.6, 0.3)
  out = tmp_path / 'out'
  report.main([str(sweep_dir), str(tmp_path / 'solo'), '--out', str(out)])
  rows = _csv(out / 'results.csv')
  assert [(r['group'], r['loss'], r['n']) for r in rows] == [
    ('sweep/loss=non_saturating', 'non_saturating', '3'),
    ('sweep/loss=minimax', 'minimax', '3'),
    ('solo', 'hinge', '1'),  # the sweep's override column, from config.json
  ]


def test_aggregate_averages_the_runs_that_logged_a_step():
  steps, mean, lo, hi = stats.aggregate(
    [
      (np.array([10, 20]), np.array([1.0, 3.0])),
      (np.array([10]), np.array([2.0])),  # an unfinished run
    ]
  )
  np.testing.assert_array_equal(steps, [10, 20])
  np.testing.assert_allclose(mean, [1.5, 3.0])
  np.testing.assert_allclose(lo, [1.0, 3.0])
  np.testing.assert_allclose(hi, [2.0, 3.0])


def test_generator_loss_curves_show_saturation():
  """Per example, with D = sigmoid(l): minimax log(1 - D), d/dl = -D (-> 0
  as D -> 0); non-saturating -log D, d/dl = D - 1 (-> -1)."""
  d = np.array([1e-3, 0.1, 0.5, 0.9])
  loss, grad = losses.generator_loss_curves('minimax', d)
  np.testing.assert_allclose(loss, np.log1p(-d), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(grad, -d, rtol=1e-4, atol=1e-6)
  loss, grad = losses.generator_loss_curves('non_saturating', d)
  np.testing.assert_allclose(loss, -np.log(d), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(grad, d - 1, rtol=1e-4, atol=1e-6)
  _, grad = losses.generator_loss_curves('wasserstein', d)  # -l: d/dl = -1
  np.testing.assert_allclose(grad, -1.0)


def test_bogus_directory_is_a_clear_error(tmp_path):
  (tmp_path / 'empty').mkdir()
  with pytest.raises(SystemExit, match='neither a run directory'):
    report.main([str(tmp_path / 'empty')])
  with pytest.raises(SystemExit, match='is not a directory'):
    report.main([str(tmp_path / 'missing')])
  proc = subprocess.run(
    [sys.executable, '-m', 'gan_jax.report', str(tmp_path / 'empty')],
    cwd=REPO,
    capture_output=True,
    text=True,
  )
  assert proc.returncode == 1
  assert proc.stderr.startswith('error: ') and 'Traceback' not in proc.stderr
  assert str(tmp_path / 'empty') in proc.stderr
  assert not (tmp_path / 'empty' / 'report').exists()


def test_a_sweep_report_writes_its_records_and_the_verdicts_of_its_reference(
  sweep_dir, tmp_path
):
  """The records outlive the runs: the same verdicts from them alone."""
  entry = {
    'value': 3.0,
    'error': 0.5,
    'kind': 'se_trials',
    'n': 10,
    'margin': 1.0,
    'reason': 'test',
  }
  ref = {
    'source': 'Some et al.',
    'rows': [
      {'where': {'loss': 'non_saturating'}, 'metrics': {'fd': entry}},
      {'where': {'loss': 'none'}, 'metrics': {'fd': entry}},  # no group
    ],
  }
  index = json.loads((sweep_dir / 'sweep.json').read_text())
  (sweep_dir / 'sweep.json').write_text(json.dumps(index | {'reference': ref}))
  out = tmp_path / 'out'
  report.main([str(sweep_dir), '--out', str(out)])
  rec = records.load(str(out))
  assert rec.reference == ref and rec.configs['loss=minimax']['loss'] == (
    'minimax'
  )
  fd = [v[0] for v in GROUPS['non_saturating']]
  sample = rec.sample('loss=non_saturating', 'fd')
  assert (
    sample.values == tuple(fd)
    and rec.last_step('loss=non_saturating', 'fd') == 20
  )
  assert sample.runs == ('seed=0', 'seed=1', 'seed=2')  # pairs by seed
  other = rec.sample('loss=minimax', 'fd')
  assert verdict.compare(sample, other).paired
  expected = verdict.verdict(verdict.Paper.of(entry), verdict.Sample.of(fd))
  text = (out / 'report.md').read_text()
  assert '## Beside the paper' in text
  (row,) = [
    r for t in _md_tables(out / 'report.md') for r in t if 'verdict' in r
  ]
  assert row['setting'] == 'loss=non_saturating'
  assert row['ours − paper [95 % CI]'] == expected.interval_text()
  assert row['verdict'] == expected.text()


def test_saturation_figure_is_written(tmp_path):
  """experiments/saturation.py draws the G loss curves of its two losses."""
  path = tmp_path / 'figures' / 'generator_losses.png'
  assert saturation.write_generator_losses(str(path)) == str(path)
  _check_png(path)


def _share(sweep_dir, root, seeds):
  """A sweep directory holding the points of `sweep_dir` with `seeds`."""
  index = json.loads((sweep_dir / 'sweep.json').read_text())
  index['points'] = [
    p for p in index['points'] if p['overrides']['seed'] in seeds
  ]
  for p in index['points']:
    if (sweep_dir / p['workdir']).exists():
      shutil.copytree(sweep_dir / p['workdir'], root / p['workdir'])
  root.mkdir(exist_ok=True)
  (root / 'sweep.json').write_text(json.dumps(index))
  return root


def test_pooled_shares_of_seeds_equal_the_whole_sweep(sweep_dir, tmp_path):
  """--pool reads shares of one sweep's seeds as the sweep itself; without
  it they are groups of their own, and shares of different groups with the
  same name are refused."""
  a = _share(sweep_dir, tmp_path / 'seeds01', {0, 1})
  b = _share(sweep_dir, tmp_path / 'seeds23', {2, 3})
  whole, pooled, apart = (tmp_path / n for n in ('whole', 'pooled', 'apart'))
  report.main([str(sweep_dir), '--out', str(whole)])
  report.main([str(a), str(b), '--pool', '--out', str(pooled)])
  assert _csv(pooled / 'results.csv', True) == _csv(whole / 'results.csv', True)
  report.main([str(a), str(b), '--out', str(apart)])
  assert [(r['group'], r['n']) for r in _csv(apart / 'results.csv')] == [
    ('seeds01/loss=non_saturating', '2'),
    ('seeds01/loss=minimax', '2'),
    ('seeds23/loss=non_saturating', '1'),
    ('seeds23/loss=minimax', '1'),
  ]
  index = json.loads((b / 'sweep.json').read_text())
  for p in index['points']:
    p['overrides']['loss'] = 'hinge'
  (b / 'sweep.json').write_text(json.dumps(index))
  with pytest.raises(SystemExit, match='pool only shares of one sweep'):
    report.main([str(a), str(b), '--pool', '--out', str(pooled)])


def _write_curve(path, steps, values):
  """A run directory with only a config and evaluations of parzen_ll."""
  path.mkdir(parents=True)
  (path / 'config.json').write_text(json.dumps({'loss': 'x', 'seed': 0}))
  rows = [
    {'step': int(s), 'eval/parzen_ll': float(v)} for s, v in zip(steps, values)
  ]
  (path / 'metrics.jsonl').write_text(
    ''.join(json.dumps(r) + '\n' for r in rows)
  )


def test_trend_line_on_log2_steps_and_where_it_meets_a_target(tmp_path):
  # Two seeds 1 nat either side of 100 + 5 log2(step / 1000): the mean lies
  # on that line, so the slope is 5 a doubling, its error 0, and 115 is met
  # at step 8,000; evaluations before --trend_from are left out.
  steps = np.array([500, 1000, 2000, 3000, 4000])
  line = 100 + 5 * np.log2(steps / 1000)
  for k, offset in enumerate((-1.0, 1.0)):
    _write_curve(tmp_path / 'k' / f'model_{k}', steps, line + offset)
  out = tmp_path / 'out'
  report.main(
    [str(tmp_path / 'k'), '--out', str(out), '--trend', 'parzen_ll',
     '--trend_from', '1000', '--target', '115']
  )  # fmt: skip
  (row,), (fit,) = _md_tables(out / 'trend_parzen_ll.md')
  assert row['steps fitted'] == '1000-4000' and row['n'] == '4'
  assert float(row['last parzen_ll']) == pytest.approx(110)
  slope, se = (float(x) for x in row['per doubling'].split(' ± '))
  assert slope == pytest.approx(5) and se == pytest.approx(0, abs=1e-6)
  assert float(row['se over runs']) == pytest.approx(0, abs=1e-6)
  assert row['reaches 115 at step (slope ± 2 se)'] == '8,000 (8,000 to 8,000)'
  # A line in log2(step) has no bend: the saturating fit's smallest power.
  assert fit == {
    'group': 'k',
    'power': f'{stats.POWERS[0]:.3g}',
    'limit (se over runs)': 'no bend',
    'reaches 115 at step': '',
  }


def _run(name, steps, values):
  rows = [{'step': int(s), 'm': float(v)} for s, v in zip(steps, values)]
  return read.Run(name, {}, [], rows, None, None)


def test_trend_error_over_runs_is_the_spread_of_their_own_slopes():
  # Three noise-free runs rising 4, 5 and 9 a doubling: the mean's line has
  # slope 6 and no residual (se 0), the runs' slopes a standard error of
  # stdev(4, 5, 9) / sqrt(3); the reach bounds take the larger error, each
  # a line through the mean point (step 2,828, value 19).
  steps = np.array([1000, 2000, 4000, 8000])
  x = np.log2(steps / 1000)
  runs = [_run(f'r{k}', steps, 10 + k * x) for k in (4, 5, 9)]
  t = stats.log_trend(read.Group('g', {}, runs), 'm', target=40.0)
  se_runs = np.std([4, 5, 9], ddof=1) / np.sqrt(3)
  assert t.slope == pytest.approx(6) and t.se == pytest.approx(0, abs=1e-9)
  assert t.se_runs == pytest.approx(se_runs)
  for reach, slope in zip(t.reach, (6, 6 + 2 * se_runs, 6 - 2 * se_runs)):
    assert reach == pytest.approx(1000 * 2 ** (1.5 + (40 - 19) / slope))
  # One run: no error over runs, and the bounds fall back to se.
  alone = stats.log_trend(read.Group('g', {}, runs[:1]), 'm', target=30.0)
  assert math.isnan(alone.se_runs) and alone.reach == (32000.0,) * 3


def test_trend_slope_error_is_least_squares_and_where_a_line_passed_its_target(
  tmp_path,
):
  rng = np.random.default_rng(0)
  steps = np.arange(1, 21) * 1000
  values = 50 - 3 * np.log2(steps) + rng.normal(0, 0.5, len(steps))
  g = read.Group('g', {}, [_run('r', steps, values)])
  t = stats.log_trend(g, 'm', target=60.0)
  # The reference: least squares in matrix form, cov = s² (XᵀX)⁻¹.
  x = np.stack([np.ones(len(steps)), np.log2(steps)], 1)
  coef, rss, *_ = np.linalg.lstsq(x, values, rcond=None)
  cov = rss[0] / (len(steps) - 2) * np.linalg.inv(x.T @ x)
  assert t.slope == pytest.approx(coef[1]) and t.slope < 0
  assert t.se == pytest.approx(np.sqrt(cov[1, 1]))
  # Falling from below 60: the line passed 60 before the first step, at
  # 2^((60 - a) / b) for the fitted intercept a and slope b.
  assert t.reach[0] == pytest.approx(2 ** ((60 - coef[0]) / coef[1]))
  assert all(r < steps[0] for r in t.reach)
  tables.write_trend([t], 'm', 60.0, str(tmp_path / 'trend.md'))
  row = next(
    line
    for line in (tmp_path / 'trend.md').read_text().splitlines()
    if line.startswith('| g | ')
  )
  assert row.count('passed at') == 3 and 'never' not in row
  lower = stats.log_trend(g, 'm', target=float(values[-1]) - 10)
  at = 2 ** ((lower.final - 10 - coef[0]) / coef[1])
  assert lower.reach[0] == pytest.approx(at, rel=1e-6) and at > steps[-1]
  assert lower.reach[1] < lower.reach[0] < lower.reach[2]  # steeper: sooner


def test_saturating_fit_recovers_a_power_law_and_its_limit():
  # Three noise-free runs limit_k - 100 u^-c, u = step / 1,000, limits 250,
  # 260, 270 and c on the grid: the mean is the same law with limit 260, met
  # at 250 where 100 u^-c = 10, u = 10^(1/c); the limit's error over runs is
  # stdev(250, 260, 270) / sqrt(3).
  c = float(stats.POWERS[300])
  steps = 1000 * 2.0 ** np.arange(8)
  runs = [
    _run(f'r{k}', steps, limit - 100 * (steps / 1000) ** -c)
    for k, limit in enumerate((250, 260, 270))
  ]
  t = stats.log_trend(read.Group('g', {}, runs), 'm', target=250.0)
  assert t.power == c and t.limit == pytest.approx(260)
  assert t.limit_se_runs == pytest.approx(10 / np.sqrt(3))
  assert t.limit_reach == pytest.approx(1000 * 10 ** (1 / c))
  # A target past the limit is never met; a falling law is fitted as well.
  first = stats.log_trend(read.Group('g', {}, runs[:1]), 'm', target=255.0)
  assert first.limit == pytest.approx(250) and first.limit_reach == math.inf
  falling = [_run('f', steps, 5 + 3 * (steps / 1000) ** -c)]
  t = stats.log_trend(read.Group('g', {}, falling), 'm', target=6.0)
  assert t.limit == pytest.approx(5) and math.isnan(t.limit_se_runs)
  assert t.limit_reach == pytest.approx(1000 * 3 ** (1 / c))


def test_trend_flags_are_checked(tmp_path, capsys):
  _write_curve(tmp_path / 'run', [1000, 2000], [1.0, 2.0])
  report.main([str(tmp_path / 'run'), '--trend', 'parzen_ll'])
  (row,), _ = _md_tables(tmp_path / 'run' / 'report' / 'trend_parzen_ll.md')
  assert row['per doubling'] == '1'  # 2 points: no error
  assert row['se over runs'] == ''  # 1 run
  report.main(
    [str(tmp_path / 'run'), '--trend', 'parzen_ll', '--trend_from', '1500']
  )
  assert 'under 2 evaluations of parzen_ll' in capsys.readouterr().out
  assert _md_tables(tmp_path / 'run' / 'report' / 'trend_parzen_ll.md') == [
    [],
    [],
  ]
  with pytest.raises(SystemExit, match='--target needs --trend'):
    report.main([str(tmp_path / 'run'), '--target', '3'])
  with pytest.raises(
    SystemExit, match="'fd' is no evaluation metric.*parzen_ll"
  ):
    report.main([str(tmp_path / 'run'), '--trend', 'fd'])


def _figure_artists(fig):
  """{gid: artist} of every named line, band and error bars."""
  found = {}
  for ax in fig.axes:
    for a in [*ax.lines, *ax.collections]:
      if a.get_gid():
        found[a.get_gid()] = a
  return found


def test_curves_carry_the_mean_a_min_max_band_and_each_seed(sweep_dir):
  """A 3-seed, 2-group figure, read from its artists: per group the mean
  over seeds, a band from min to max, and one thin line per seed with that
  seed's values."""
  from gan_jax.report import figures

  groups, _ = read.read_groups([str(sweep_dir)])
  fig = figures.curve_figure(groups, [figures.Panel('evals', 'fd', 'fd')])
  art = _figure_artists(fig)
  for loss, seeds in GROUPS.items():
    label = f'loss={loss}'
    finals = [s[0] for s in seeds]
    mean = art[f'mean:{label}']
    np.testing.assert_allclose(mean.get_xdata(), [10, 20])
    np.testing.assert_allclose(
      mean.get_ydata(), [2 * np.mean(finals), np.mean(finals)]
    )
    band = art[f'band:{label}'].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(min(finals))
    assert band.max() == pytest.approx(2 * max(finals))
    for seed, fd in enumerate(finals):
      line = art[f'seed:{label}:{label},seed={seed}']
      np.testing.assert_allclose(line.get_ydata(), [2 * fd, fd])
      assert line.get_linewidth() < mean.get_linewidth()


def _one_run(path):
  """A run evaluated at steps 10 and 20 (fd, kid, kid_std) and once (is,
  is_std at 20)."""
  _write_run(path, 'minimax', 0, 3.0, 0.4, 0.7, 0.2)
  rows = [
    json.loads(line)
    for line in (path / 'metrics.jsonl').read_text().splitlines()
  ]
  for row in rows:
    if 'eval/fd' in row:
      row |= {'eval/kid': 0.1 * row['step'], 'eval/kid_std': 0.5}
      if row['step'] == 20:
        row |= {'eval/is': 2.0, 'eval/is_std': 0.1}
  (path / 'metrics.jsonl').write_text(
    ''.join(json.dumps(r) + '\n' for r in rows)
  )
  results = json.loads((path / 'results.json').read_text())
  results['metrics'] |= {'kid': 2.0, 'kid_std': 0.5, 'is': 2.0, 'is_std': 0.1}
  (path / 'results.json').write_text(json.dumps(results))


def test_a_one_run_report_has_no_one_dot_figures_and_no_spread_metrics(
  tmp_path,
):
  """One run: no final-value figure, no figure of a metric evaluated once
  (the page names it), none of kid_std or is_std, which are KID's error
  bars instead."""
  from gan_jax.report import figures

  _one_run(tmp_path / 'run')
  paths = report.main([str(tmp_path / 'run'), '--out', str(tmp_path / 'out')])
  names = {os.path.basename(p) for p in paths}
  assert 'finals.png' not in names and 'eval_is.png' not in names
  assert not [n for n in names if '_std' in n or n.startswith('final_')]
  assert 'eval_distances.png' in names
  page = (tmp_path / 'out' / 'report.md').read_text()
  assert 'Evaluated once, so in the table only: is.' in page
  assert "kid_std (each run's own spread of kid)" in page
  groups, _ = read.read_groups([str(tmp_path / 'run')])
  fig = figures.curve_figure(
    groups, [figures.Panel('evals', 'kid', 'kid', 'kid_std')]
  )
  art = _figure_artists(fig)
  assert not [g for g in art if g.startswith(('band:', 'seed:'))]
  segments = art['error:run:run'].get_segments()
  np.testing.assert_allclose(
    [s[:, 1] for s in segments], [[0.5, 1.5], [1.5, 2.5]]
  )
  # The results table: no kid_std column; results.csv keeps it.
  (row,) = _md(tmp_path / 'out' / 'report.md')
  assert 'kid' in row and 'kid_std' not in row
  assert 'kid_std_mean' in _csv(tmp_path / 'out' / 'results.csv')[0]


def test_the_page_reads_in_order_links_every_file_and_captions_figures(
  sweep_dir, tmp_path
):
  out = tmp_path / 'out'
  paths = report.main([str(sweep_dir), '--out', str(out)])
  page = (out / 'report.md').read_text()
  heads = [
    '## What was read',
    '## Comparison',
    '## Evaluation curves',
    '## Samples',
    '## Training diagnostics',
    '## Files',
  ]
  at = [page.index(h) for h in heads]
  assert at == sorted(at)
  assert page.index('| group | loss | n | n_eval |') < at[2]  # the table
  assert page.index('paired t (3 seeds)') < at[2]  # the comparison rule
  lines = page.splitlines()
  for p in paths:
    name = os.path.basename(p)
    if name == 'report.md':
      continue
    assert f']({name})' in page, name
    if name.endswith('.png'):
      i = lines.index(f'![{name}]({name})')
      assert lines[i + 2].startswith('*') and lines[i + 2].endswith('*')
  assert 'fd (squared feature units)' in page  # units in the head


def test_a_vmapped_programs_rate_is_per_model_beside_its_program_rate():
  """steps_per_sec is what each model of a program makes; program_rate
  multiplies by the models the program trains, the solo-comparable rate."""

  def run(rate, models):
    rows = [
      {'step': s, 'steps_per_sec': rate, 'program_models': models}
      for s in (10, 20)
    ]
    return read.Run('r', {'seed': 0}, rows, [], None, None)

  vmapped = read.Group('vmap', {}, [run(3.43, 3)])
  solo = read.Group('solo', {}, [run(11.7, 1)])
  old = read.Group(
    'old',
    {},
    [read.Run('r', {}, [{'step': 1, 'steps_per_sec': 5.0}], [], None, None)],
  )
  rows = stats.group_table([vmapped, solo, old])
  assert rows[0].stats[stats.RATE][0] == pytest.approx(3.43)
  assert rows[0].stats[stats.PROGRAM_RATE][0] == pytest.approx(10.29)
  assert rows[1].stats[stats.PROGRAM_RATE][0] == pytest.approx(11.7)
  assert rows[2].stats[stats.PROGRAM_RATE][0] == pytest.approx(5.0)
  assert tables.header(stats.PROGRAM_RATE).endswith(
    '(model updates/s of its program)'
  )


@pytest.mark.parametrize(
  'study', ['data_efficient_600', 'metz2017', 'mode_collapse/long_60k']
)
def test_a_committed_records_folder_redraws_the_page_it_holds(study, tmp_path):
  """--records on a copy of a study's records folder gives its committed
  report.md (so the page is what its records say), links only files that
  exist, and leaves no figure of a metric's own spread."""
  from gan_jax.report import page

  folder = REPO / 'docs' / 'results' / study
  copy = tmp_path / 'copy'
  shutil.copytree(folder, copy)
  page.write_records_report(str(copy))
  text = (copy / 'report.md').read_text()
  committed = (folder / 'report.md').read_text()
  assert text.replace(str(copy), f'docs/results/{study}') == committed
  for link in re.findall(r'\]\(([^)]+)\)', text):
    assert (copy / link).exists(), link
  assert not list(copy.glob('*_std.png'))


def test_the_records_redraw_a_report_whose_runs_are_gone(sweep_dir, tmp_path):
  """A report's records alone (the run directories deleted) redraw its
  curves and its training diagnostics, from train_runs.csv, at most
  TRAIN_ROWS steps a run with the last kept."""
  from gan_jax.report import page

  out = tmp_path / 'out'
  report.main([str(sweep_dir), '--out', str(out)])
  shutil.rmtree(sweep_dir)
  (out / 'training.png').unlink()
  paths = page.write_records_report(str(out))
  assert str(out / 'training.png') in paths
  rec = records.load(str(out))
  (group,) = [g for g in records.groups_of(rec) if g.label == 'loss=minimax']
  assert [r.path for r in group.runs] == [
    f'loss=minimax,seed={s}' for s in range(3)
  ]
  run = group.runs[2]
  assert [row['step'] for row in run.train] == [10, 20]
  assert run.train[-1]['d_real'] == pytest.approx(GROUPS['minimax'][2][2])
  assert run.results['metrics']['fd'] == pytest.approx(GROUPS['minimax'][2][0])
  assert run.config['seed'] == 2
  rows = [{'step': s, 'd_loss': float(s)} for s in range(1, 251)]
  long = read.Group('g', {}, [read.Run('r', {}, rows, [], None, None)])
  records.write_train(str(tmp_path / 'train.csv'), [long])
  steps = [int(r['step']) for r in _csv(tmp_path / 'train.csv')]
  assert len(steps) == records.TRAIN_ROWS and steps[0] == 1 and steps[-1] == 250
