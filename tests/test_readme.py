"""The README's how-tos run as written: their files, copied outside the
package, register a loss, a model and a metric that train in a sweep beside
the built-ins, are re-evaluated in a fresh process, resume after SIGTERM and
appear in the report; its size and its links hold."""

import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
README = (REPO / 'README.md').read_text()


def how_tos() -> dict[str, dict]:
  """{'### heading': {'files': {name: code}, 'runs': [command lines]}}."""
  out = {}
  for section in re.split(r'\n(?=### )', README)[1:]:
    title = section.splitlines()[0]
    files = dict(
      re.findall(r'<!-- file: (\S+) -->\n```python\n(.*?)```', section, re.S)
    )
    runs = re.findall(r'<!-- run -->\n```bash\n(.*?)```', section, re.S)
    out[title] = {
      'files': files,
      'runs': [line for block in runs for line in block.splitlines() if line],
    }
  return out


def _run(args, cwd, **kwargs):
  """A README command line in `cwd`, launch.py taken from the repository."""
  args = [str(REPO / a) if a == 'launch.py' else a for a in args]
  if args[0] == 'python':
    args[0] = sys.executable
  return subprocess.run(
    args, cwd=cwd, capture_output=True, text=True, timeout=600, **kwargs
  )


# (how-to, its experiment file, a --config override naming the registered
# entry, what the report must show, the point to re-evaluate)
CASES = [
  ('### Add a loss', 'my_loss.py', [], 'loss=smoothed', 'loss=smoothed,seed=0'),
  (
    '### Add a model',
    'my_model.py',
    ['--config.model.name=resmlp'],
    'model.name=resmlp',
    'model.name=resmlp,seed=1',
  ),
  ('### Add a metric', 'my_metric.py', [], '| swd |', 'loss=smoothed,seed=1'),
]


@pytest.mark.parametrize('title, file, naming, shown, point', CASES)
def test_a_how_to_runs_as_written(title, file, naming, shown, point, tmp_path):
  sections = how_tos()
  section = next(v for k, v in sections.items() if k.startswith(title))
  assert section['runs'] and file in section['files']
  for s in sections.values():  # every file, outside the package
    for name, code in s['files'].items():
      (tmp_path / name).write_text(code)
  for line in section['runs']:
    r = _run(shlex.split(line), tmp_path)
    assert r.returncode == 0, (line, r.stdout[-2000:], r.stderr[-2000:])
  sweep = tmp_path / 'runs' / file.removesuffix('.py')
  assert (sweep / point / 'registered.json').exists()
  report = (
    tmp_path / 'runs' / f'{sweep.name}_report' / 'report.md'
  ).read_text()
  assert shown in report

  # Re-evaluated in a fresh process, which imports the registering file.
  r = _run(
    ['python', '-m', 'gan_jax.evaluate', f'--workdir={sweep / point}'], REPO
  )
  assert r.returncode == 0, r.stderr[-2000:]
  assert (sweep / point / 'evaluations.jsonl').exists()

  # SIGTERM, then the same command resumes from the saved step.
  single = tmp_path / 'single'
  cmd = ['python', 'launch.py', f'--config={tmp_path / file}:smoke']
  cmd += [f'--workdir={single}', *naming]
  args = [str(REPO / 'launch.py') if a == 'launch.py' else a for a in cmd]
  proc = subprocess.Popen(
    [sys.executable, *args[1:], '--config.num_steps=100000'],
    cwd=tmp_path,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
  )
  rows = single / 'metrics.jsonl'
  deadline = time.time() + 300
  while not (rows.exists() and rows.read_text().count('\n') >= 1):
    assert proc.poll() is None and time.time() < deadline
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  last = err.strip().splitlines()[-1]
  assert 'stopped by SIGTERM at step' in last, err[-2000:]
  n = int(last.split('at step ')[1].split(';')[0])
  r = _run(cmd + [f'--config.num_steps={n + 50}'], tmp_path)
  assert r.returncode == 0, r.stderr[-2000:]
  assert f'resumed from step {n}' in r.stdout + r.stderr


def test_the_readme_teaches_in_few_lines_and_reaches_every_reference():
  assert len(README.splitlines()) <= 200
  for page in re.findall(r'`(docs/[\w/]+\.md)`', README):
    assert (REPO / page).exists(), page
  for page in (REPO / 'docs').glob('*.md'):
    assert f'docs/{page.name}' in README, page.name


def test_a_moved_registering_file_is_one_line(tmp_path):
  """A run whose registering file is gone: one line naming it, nothing run."""
  section = next(v for k, v in how_tos().items() if 'loss' in k)
  for name, code in section['files'].items():
    (tmp_path / name).write_text(code)
  workdir = tmp_path / 'run'
  r = _run(
    [
      'python',
      'launch.py',
      f'--config={tmp_path / "my_loss.py"}:smoke',
      f'--workdir={workdir}',
      '--config.num_steps=50',
      '--config.eval.every=50',
      '--config.checkpoint_every=50',
      '--config.log_every=50',
      '--config.sample_every=50',
    ],
    tmp_path,
  )
  assert r.returncode == 0, r.stderr[-2000:]
  os.rename(tmp_path / 'my_loss.py', tmp_path / 'moved.py')
  for cmd in (
    ['python', '-m', 'gan_jax.evaluate', f'--workdir={workdir}'],
    ['python', '-m', 'gan_jax.sample', f'--workdir={workdir}', '--out=x.png'],
    ['python', '-m', 'gan_jax.jacobian', f'--workdir={workdir}'],
  ):
    r = _run(cmd, tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
      f"error: this run uses loss 'smoothed', registered by "
      f'{tmp_path / "my_loss.py"}, which is missing: put that file back '
      'where it was to use the run.'
    ]
    assert not (tmp_path / 'x.png').exists()
    assert not (workdir / 'jacobian').exists()
