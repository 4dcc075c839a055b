"""Records that survive a cut: a killed writer leaves no merged line and no
half-written file (gan_jax.rundir's writes)."""

import errno
import json
import os
import shutil

import numpy as np
import pytest

from gan_jax import rundir, train, writers


def _lines(path) -> list[str]:
  return path.read_text().splitlines()


def test_resumed_run_repairs_a_cut_last_line_of_metrics(toy_run, tmp_path):
  """A run killed while writing its step-200 eval row (so before it saved
  step 200) leaves that line cut; the rerun drops it, resumes from step
  100, and logs 200 again: every line parses and every logged step has its
  train and eval rows (before the repair the rerun's first row merged with
  the cut line, losing step 200's train row)."""
  workdir = tmp_path / 'run'  # a copy of the toy smoke run: steps 100, 200
  shutil.copytree(toy_run[0], workdir)
  shutil.rmtree(workdir / rundir.CHECKPOINTS / '200')  # the kill came first
  metrics = workdir / rundir.METRICS
  text = metrics.read_text()
  last = text.rstrip('\n').rsplit('\n', 1)[1]
  assert json.loads(last)['step'] == 200 and 'eval/seconds' in last
  metrics.write_text(text[: len(text) - len(last) // 2 - 1])  # cut, no '\n'

  config = toy_run[1].copy_and_resolve_references()
  config.num_steps = 300
  train.train_and_evaluate(config, str(workdir))
  assert all(json.loads(line) for line in _lines(metrics))
  rows, evals, bad = rundir.read_metrics(str(workdir))
  assert bad == 0
  assert [r['step'] for r in rows] == [100, 200, 300]
  assert [r['step'] for r in evals] == [100, 200, 300]


@pytest.mark.parametrize(
  'tail, kept',
  [
    ('{"step": 4, "d_lo', ''),
    ('{"x": "' + 'x' * 10_000, ''),  # longer than the 4 KiB read at a time
    ('', ''),
    ('{"step": 4}', '{"step": 4}\n'),  # whole, only its newline missing
  ],
)
@pytest.mark.parametrize('before', ['', '{"step": 1}\n{"step": 2}\n'])
def test_append_jsonl_drops_a_cut_last_line(tmp_path, before, tail, kept):
  """A cut last line (not JSON) is dropped, a whole one gets its newline;
  the rows before it and the new row are whole lines."""
  path = tmp_path / 'evaluations.jsonl'
  path.write_text(before + tail)
  rundir.append_jsonl(str(path), {'step': 3})
  assert path.read_text() == before + kept + '{"step": 3}\n'


def test_metric_writer_repairs_and_writes_each_row_at_once(tmp_path):
  """MetricWriter drops a cut last line, and each row is in the file as
  soon as it is logged (a kill loses at most the row being written)."""
  (tmp_path / rundir.METRICS).write_text('{"step": 1}\n{"step": 2, "d_')
  writer = writers.MetricWriter(str(tmp_path))
  writer.scalars(2, {'d_loss': np.float32(0.5)})
  assert _lines(tmp_path / rundir.METRICS) == [
    '{"step": 1}',
    '{"step": 2, "d_loss": 0.5}',
  ]
  writer.close()


@pytest.mark.parametrize('fails', ['fsync', 'replace'])
def test_write_text_is_whole_or_not_at_all(tmp_path, monkeypatch, fails):
  """A full disk while writing or renaming: the error propagates, the old
  file is left as it was, and no temporary is left behind."""
  path = tmp_path / 'results.json'
  rundir.write_json(str(path), {'step': 100})
  assert os.listdir(tmp_path) == ['results.json']

  def full(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(os, fails, full)
  with pytest.raises(OSError) as e:
    rundir.write_json(str(path), {'step': 200})
  assert e.value.errno == errno.ENOSPC
  assert json.loads(path.read_text()) == {'step': 100}
  assert os.listdir(tmp_path) == ['results.json']
