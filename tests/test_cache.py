"""Cache entries several processes share (gan_jax.cache), met at once.

- Four processes started together on an empty eval.cache_dir train one
  feature network: one of them trains (says so), the others wait for it and
  read it; all four score the same noise the same (their networks are one),
  get the same real-data scores, and leave one entry of each kind and no
  private build folder.
- A damaged entry (info.json cut short or naming another network, info.json
  or the weights removed) reads as missing; the next process trains it
  again, once, to the same network (the same scores), not crashing on it.
- The lock alone (no JAX): of four processes asking at once one builds,
  the others read what it published; a failed build publishes nothing.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap

from gan_jax import cache, evaluate
from gan_jax.metrics import classifier

REPO = pathlib.Path(__file__).resolve().parents[1]
STEPS = 20  # a LeNet of 20 steps: the same plumbing as 3000, in seconds

# One evaluation's preparation on MNIST's original files (no TensorFlow):
# the feature network, the real-data scores, and the scores of fixed noise.
_EVALUATE = textwrap.dedent("""
  import json, sys
  import numpy as np
  from gan_jax import evaluate
  from experiments import mnist_dcgan
  c = mnist_dcgan.get_config('smoke')
  c.data.name, c.data.manual_dir = 'mnist_original', sys.argv[1]
  c.eval.cache_dir, c.eval.classifier_steps = sys.argv[2], int(sys.argv[3])
  c.eval.metrics, c.eval.num_samples, c.eval.best_metric = 'fd', 200, ''
  ev = evaluate.Evaluator(c)
  noise = np.random.default_rng(0).uniform(-1, 1, (200, 28, 28, 1))
  print('RESULT ' + json.dumps({
    'real_data': ev.real_data(),
    'noise': ev(noise.astype(np.float32)),
    'feature_net': ev.protocol['feature_net'],
  }), flush=True)
""")


def _start(code, *args):
  """The process `python -c code args`, its output going to files (a full
  pipe would stop a process that holds a lock)."""
  out, err = tempfile.TemporaryFile('w+'), tempfile.TemporaryFile('w+')
  cmd = [sys.executable, '-c', code, *map(str, args)]
  return subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=err), out, err


def _finish(started):
  """The stdout of each started process, once all ended well."""
  outs = []
  for p, out, err in started:
    with out, err:
      p.wait(timeout=300)
      out.seek(0), err.seek(0)
      assert p.returncode == 0, err.read()[-3000:]
      outs.append(out.read())
  return outs


def _results(outs):
  """Each process's RESULT line, and how many processes trained."""
  trained = sum(o.count('training the feature network') for o in outs)
  return trained, [
    json.loads(line.removeprefix('RESULT '))
    for out in outs
    for line in out.splitlines()
    if line.startswith('RESULT ')
  ]


def test_four_processes_on_an_empty_cache_train_one_feature_network(
  mnist_manual_dir, tmp_path
):
  outs = _finish(
    [_start(_EVALUATE, mnist_manual_dir, tmp_path, STEPS) for _ in range(4)]
  )
  trained, results = _results(outs)
  assert trained == 1, outs
  assert any('waiting for process' in o for o in outs), outs
  assert len(results) == 4 and all(r == results[0] for r in results), results
  tag = classifier.Recipe(steps=STEPS).tag('mnist_original')
  assert {p.name for p in tmp_path.iterdir() if p.is_dir()} == {
    evaluate.REAL_DATA,
    tag,
  }
  assert not list(tmp_path.rglob('*.tmp*'))
  assert len(list((tmp_path / evaluate.REAL_DATA).glob('*.json'))) == 1

  # A damaged entry reads as missing, never raises ...
  folder, copy = tmp_path / tag, tmp_path / 'copy'
  read = lambda: classifier._read(str(copy), tag, (28, 28, 1))
  for damage in (
    lambda: (copy / classifier.INFO).write_text('{"name": "lenet_mn'),
    lambda: (copy / classifier.INFO).write_text('{"name": "other"}'),
    lambda: (copy / classifier.INFO).unlink(),
    lambda: shutil.rmtree(copy / classifier.PARAMS),
    lambda: shutil.rmtree(copy),
  ):
    shutil.copytree(folder, copy, dirs_exist_ok=True)
    assert read() is not None
    damage()
    assert read() is None
  # ... and is trained again (once), to the same network.
  (folder / classifier.INFO).write_text('{"name": "lenet_mn')
  outs = _finish([_start(_EVALUATE, mnist_manual_dir, tmp_path, STEPS)])
  assert _results(outs) == (1, results[:1]), outs
  assert not list(tmp_path.rglob('*.tmp*'))


# Asks for one entry: builds it (1 s, a folder of two files) or reads it.
_ENTRY = textwrap.dedent("""
  import os, sys, time
  from gan_jax import cache
  path = sys.argv[1]
  def read(path):
    try:
      with open(os.path.join(path, 'done')) as f:
        return f.read()
    except OSError:
      return None
  def build(path):
    with cache.publishing(path) as private:
      with open(os.path.join(private, 'value'), 'w') as f:
        f.write(str(os.getpid()))
      time.sleep(1)
      with open(os.path.join(private, 'done'), 'w') as f:
        f.write(str(os.getpid()))
    print('built', flush=True)
    return str(os.getpid())
  print('value', cache.read_or_build(path, read, build, 'the entry'))
""")


def test_one_of_four_processes_builds_an_entry_the_others_read_it(tmp_path):
  entry = tmp_path / 'sub' / 'entry'
  outs = _finish([_start(_ENTRY, entry) for _ in range(4)])
  assert sum(o.count('built') for o in outs) == 1, outs
  values = {o.split('value ')[1].strip() for o in outs}
  assert values == {(entry / 'done').read_text()}
  assert (entry / 'value').read_text() == (entry / 'done').read_text()
  assert sorted(os.listdir(entry.parent)) == ['.entry.lock', 'entry']


def test_a_failed_build_publishes_nothing_and_a_damaged_entry_is_replaced(
  tmp_path,
):
  entry = tmp_path / 'entry'
  try:
    with cache.publishing(str(entry)) as private:
      (pathlib.Path(private) / 'half').write_text('')
      raise RuntimeError('interrupted')
  except RuntimeError:
    pass
  assert os.listdir(tmp_path) == []
  entry.mkdir()
  (entry / 'damaged').write_text('')
  with cache.publishing(str(entry)) as private:
    (pathlib.Path(private) / 'whole').write_text('')
  assert os.listdir(entry) == ['whole'] and os.listdir(tmp_path) == ['entry']
  said = []
  with cache.lock(str(entry), 'the entry', said.append):
    assert (
      (tmp_path / '.entry.lock')
      .read_text()
      .startswith(f'process {os.getpid()} on ')
    )
  assert said == []  # nobody else held it
