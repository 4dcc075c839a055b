"""Fault injection: SIGKILLs at random instants of real runs, each followed
by the same command, ending bitwise equal to an uninterrupted run.

  python -m benchmarks.fault_injection [--kills 50] [--seed 0] [--workdir DIR]
      [--manual_dir ../shared/data/mnist] [--data_dir TFDS_DIR]

Two legs, each a `launch.py` command run as a subprocess (MNIST and SWEEP
below hold their settings):
- mnist: the MNIST DCGAN of experiments/mnist_dcgan.py:smoke, 1,000 updates,
  FD on the LeNet features every 100, a checkpoint every 100, the LeNet
  cached in DIR/cache (trained by a start that finds the cache empty);
- sweep: 3 seeds of the toy ring (experiments/toy_ring.py:smoke, 2,000
  updates, STUDY) as one vmapped program (`--sweep --launcher=vmap`).
Each kill is aimed at the phase with the fewest kills so far (ties drawn from
a numpy Generator seeded by --seed): training, a checkpoint save, an
evaluation, the LeNet's training (the cache is emptied before that start) or
a point of the vmapped sweep (there: training, a save or an evaluation, the
fewest first). It waits for an event of that phase in the start's output or
files, at a step drawn at most AHEAD evaluations past the resumed one: the
LeNet's phase line; the training row of a step followed by no save; the
training row of an evaluation step (the evaluation follows it); a new
temporary checkpoint folder of that step or later. Then it waits a random
delay up to the phase's median length (spans in the uninterrupted run; the
LeNet's in the later starts, which load its program from the XLA cache) and
SIGKILLs the process group. A kill is counted under what was under way when
it landed, read from the dead start's output and files: the LeNet's phase
line without its 'done' (or its cache entry half-published), a temporary
checkpoint folder left, an evaluation step's training row without its
evaluation row, else training; start-up before the start's first training
row. The same command then starts again. A run (a round) whose next start
would only do its last evaluation is run to its end, and a new round of the
same command in a new workdir takes the next kills.

Every finished round is compared with an uninterrupted run of the same
command (DIR/<leg>/straight): every array of the final checkpoint
(checkpoint.restore_run; compared bit for bit too), results.json's values
and the last metrics.jsonl value of each key at each step (timings left
out). A start that fails is a finding: its output is shown and the kills go
on in a new round. Prints a line per kill and per finished run, then the
kills by phase, the starts, resumes, the largest absolute difference and
the wall time; exits 1 unless that difference is 0.0, no start failed and
every phase had a kill. A kill costs about one process start (5-25 s on
2 CPU cores); the starts share an XLA compilation cache in DIR/xla.
"""

import argparse
import collections
import dataclasses
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # python benchmarks/fault_injection.py works too

import jax
import numpy as np

from benchmarks import load
from gan_jax import checkpoint, data, rundir

PHASES = (
  'training',
  'checkpoint save',
  'evaluation',
  'LeNet training',
  'vmapped sweep point',
)
SWEEP_AIMS = ('training', 'checkpoint save', 'evaluation')  # in the sweep
START_UP = 'start-up'  # before a start's first training row
POLL = 0.002  # seconds between looks at a run's files
TIMEOUT = 900  # seconds a start may take to reach an awaited event
TMP = '.orbax-checkpoint-tmp'  # Orbax's name of a save under way
LENET_LINE = 'training the feature network'
TIMING = ('steps_per_sec', 'images_per_sec', 'eval/seconds', 'seconds')

MNIST = {  # mnist leg: overrides of experiments/mnist_dcgan.py:smoke
  'eval.metrics': 'fd',
  'eval.classifier_steps': 100,
  'eval.every': 100,
  'num_steps': 1000,
  'steps_per_dispatch': 25,
  'log_every': 25,
  'checkpoint_every': 100,
  'sample_every': 1000,
}
AHEAD = 2  # a kill waits for a step at most this many evaluations ahead
SWEEP = {  # sweep leg: its study's settings
  'num_steps': 2000,
  'log_every': 50,
  'checkpoint_every': 200,
  'eval_every': 200,
}
STUDY = """\
from experiments import toy_ring
from gan_jax import hyper


def get_config(arg=None):
  c = toy_ring.get_config('smoke')
  c.num_steps, c.steps_per_dispatch = {num_steps}, {log_every}
  c.log_every, c.checkpoint_every = {log_every}, {checkpoint_every}
  c.eval.every, c.sample_every = {eval_every}, {num_steps}
  return c


def get_hyper(arg=None):
  return hyper.sweep('seed', [0, 1, 2])
"""


@dataclasses.dataclass
class Leg:
  """A launch.py command (but its --workdir) and the run it makes."""

  name: str
  args: list
  num_steps: int
  log_every: int
  checkpoint_every: int
  eval_every: int
  points: list  # the sweep's run directories in its workdir; [''] for a run
  cache_dir: str | None = None  # emptied to make the LeNet train again

  def command(self, workdir: str) -> list:
    return [sys.executable, 'launch.py', *self.args, f'--workdir={workdir}']

  def runs(self, workdir: str) -> list:
    return [os.path.join(workdir, p) if p else workdir for p in self.points]

  def is_eval(self, step: int) -> bool:
    return step % self.eval_every == 0 or step == self.num_steps

  def resumes_at(self, workdir: str) -> int:
    """The step a start in `workdir` resumes from (its members' least)."""
    return min(
      max(
        checkpoint.committed_steps(os.path.join(r, rundir.CHECKPOINTS)),
        default=0,
      )
      for r in self.runs(workdir)
    )


def mnist_leg(directory, manual_dir, data_dir) -> Leg:
  overrides = {
    'data.manual_dir': manual_dir,
    'data.data_dir': data_dir,
    'eval.cache_dir': os.path.join(directory, 'cache'),
    **MNIST,
  }
  args = ['--config=experiments/mnist_dcgan.py:smoke']
  args += [f'--config.{k}={v}' for k, v in overrides.items()]
  return Leg(
    'mnist',
    args,
    MNIST['num_steps'],
    MNIST['log_every'],
    MNIST['checkpoint_every'],
    MNIST['eval.every'],
    [''],
    overrides['eval.cache_dir'],
  )


def sweep_leg(directory) -> Leg:
  study = os.path.join(directory, 'study.py')
  with open(study, 'w') as f:
    f.write(STUDY.format(**SWEEP))
  args = [f'--config={study}', '--sweep', '--launcher=vmap']
  return Leg(
    'sweep',
    args,
    SWEEP['num_steps'],
    SWEEP['log_every'],
    SWEEP['checkpoint_every'],
    SWEEP['eval_every'],
    [f'seed={s}' for s in range(3)],
  )


# ---- One start of a command, watched.


def _rows(path: str) -> list:
  """metrics.jsonl's complete rows (a line being written is left out)."""
  try:
    with open(path) as f:
      text = f.read()
  except FileNotFoundError:
    return []
  rows = []
  for line in text.split('\n')[:-1]:
    try:
      rows.append(json.loads(line))
    except ValueError:
      rows.append({'step': -1, 'cut': line})  # kept visible to the checks
  return rows


def _tmp_dirs(run: str) -> dict:
  """{path: (inode, mtime)} of the saves under way (or left) in a run."""
  out = {}
  for sub in (rundir.CHECKPOINTS, rundir.BEST_CHECKPOINT):
    folder = os.path.join(run, sub)
    try:
      names = os.listdir(folder)
    except FileNotFoundError:
      continue
    for name in names:
      if TMP in name:
        path = os.path.join(folder, name)
        try:
          st = os.stat(path)
        except FileNotFoundError:
          continue
        out[path] = (st.st_ino, st.st_mtime_ns)
  return out


def _cache_tmp(cache_dir: str | None) -> list:
  """The private folders of cache entries being built (gan_jax.cache)."""
  if not cache_dir or not os.path.isdir(cache_dir):
    return []
  return [n for n in os.listdir(cache_dir) if n.endswith('.tmp')]


class Start:
  """The command of `leg` started in `workdir` (its own process group):
  its output lines with their times, and every POLL seconds the rows of its
  runs' metrics.jsonl and the temporary checkpoint folders, with times."""

  def __init__(self, leg: Leg, workdir: str, env: dict):
    self.leg, self.workdir = leg, workdir
    self.runs = leg.runs(workdir)
    self.old_rows = {
      r: len(_rows(os.path.join(r, rundir.METRICS))) for r in self.runs
    }
    self.old_tmp = {}
    for r in self.runs:
      self.old_tmp |= _tmp_dirs(r)
    self.old_cache_tmp = set(_cache_tmp(leg.cache_dir))
    self.resumed_from = leg.resumes_at(workdir)
    self.lines = []  # (time, line)
    self.rows = []  # (time, run, row): rows this start wrote
    self.saves = {}  # tmp path -> [appeared, gone or None]
    self.t0 = time.perf_counter()
    self.proc = subprocess.Popen(
      leg.command(workdir),
      cwd=REPO,
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
      start_new_session=True,
    )
    self._done = threading.Event()
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._watcher = threading.Thread(target=self._watch, daemon=True)
    self._reader.start()
    self._watcher.start()

  def _read(self):
    for line in self.proc.stdout:
      self.lines.append((time.perf_counter(), line.rstrip('\n')))

  def _watch(self):
    seen = dict(self.old_rows)
    sizes = {}
    while not self._done.is_set():
      self._look(seen, sizes)
      time.sleep(POLL)
    self._look(seen, sizes)

  def _look(self, seen, sizes):
    now = time.perf_counter()
    tmp = {}
    for r in self.runs:
      tmp |= _tmp_dirs(r)
      path = os.path.join(r, rundir.METRICS)
      try:
        size = os.stat(path).st_size
      except FileNotFoundError:
        size = 0
      if size != sizes.get(r):
        sizes[r] = size
        rows = _rows(path)
        for row in rows[seen[r] :]:
          self.rows.append((now, r, row))
        seen[r] = max(seen[r], len(rows))
    for path, key in tmp.items():
      if self.old_tmp.get(path) != key and path not in self.saves:
        self.saves[path] = [now, None]
    for path, span in self.saves.items():
      if span[1] is None and path not in tmp:
        span[1] = now

  def until(self, found, timeout=TIMEOUT):
    """Waits until found() returns a value, which it returns; None when the
    process ended first."""
    deadline = time.perf_counter() + timeout
    while True:
      value = found()
      if value is not None:
        return value
      if self.proc.poll() is not None:
        self._stop()
        return found()
      if time.perf_counter() > deadline:
        self.kill()
        raise SystemExit(
          f'error: {self.leg.name} start in {self.workdir} reached no '
          f'awaited event in {timeout} s; its output ends:\n{self.tail()}'
        )
      time.sleep(POLL)

  def kill(self) -> bool:
    """SIGKILLs the process group; False when the process had ended."""
    alive = self.proc.poll() is None
    if alive:
      os.killpg(self.proc.pid, signal.SIGKILL)
    self.proc.wait()
    self._stop()
    return alive

  def finish(self) -> int:
    """Waits for the process to end by itself; its exit status."""
    self.proc.wait(timeout=TIMEOUT)
    self._stop()
    return self.proc.returncode

  def _stop(self):
    self._reader.join()
    self._done.set()
    self._watcher.join()

  def tail(self, n=20) -> str:
    return '\n'.join(line for _, line in self.lines[-n:])

  def saw(self, text: str):
    """The time of the first output line holding `text`, or None."""
    return next((t for t, line in self.lines if text in line), None)

  def train_rows(self):
    return [(t, r, row) for t, r, row in self.rows if 'd_loss' in row]

  def row_at(self, step: int, evaluation=False):
    """When this start wrote the (evaluation) row of `step` in every run,
    or None."""
    times = {
      r: t
      for t, r, row in self.rows
      if row.get('step') == step
      and any(k.startswith('eval/') for k in row) == evaluation
    }
    return max(times.values()) if len(times) == len(self.runs) else None

  def save_from(self, step: int):
    """When a save of `step` or later began in this start, or None."""
    times = [
      span[0]
      for path, span in self.saves.items()
      if int(os.path.basename(path).split('.')[0]) >= step
    ]
    return min(times) if times else None

  def resumed(self) -> bool:
    return self.saw('resumed from step') is not None


# ---- What a kill landed in.


def landed(start: Start) -> tuple[str, str]:
  """(phase, detail) of what the killed start was doing, from its output and
  the files it left."""
  lenet = [i for i, (_, line) in enumerate(start.lines) if LENET_LINE in line]
  if lenet and not any(
    line.strip().startswith('done in') for _, line in start.lines[lenet[-1] :]
  ):
    return 'LeNet training', 'its phase line without its done'
  if set(_cache_tmp(start.leg.cache_dir)) - start.old_cache_tmp:
    return 'LeNet training', 'publishing it to the cache'
  sub, detail = _landed_in_run(start)
  if start.leg.name == 'sweep' and sub != START_UP:
    return 'vmapped sweep point', f'{sub}: {detail}'
  return sub, detail


def _landed_in_run(start: Start) -> tuple[str, str]:
  left = {}
  for r in start.runs:
    left |= _tmp_dirs(r)
  new = sorted(p for p, key in left.items() if start.old_tmp.get(p) != key)
  if new:
    return 'checkpoint save', ', '.join(
      os.path.relpath(p, start.workdir) for p in new
    )
  trained = start.train_rows()
  if not trained:
    return START_UP, 'no training row yet'
  step = max(row['step'] for _, _, row in trained)
  evaluated = {
    r
    for _, r, row in start.rows
    if row.get('step') == step and any(k.startswith('eval/') for k in row)
  }
  if start.leg.is_eval(step) and len(evaluated) < len(start.runs):
    return (
      'evaluation',
      f'step {step}, {len(evaluated)} of {len(start.runs)} evaluated',
    )
  return 'training', f'after the row of step {step}'


# ---- Aiming a kill.


def aim(start: Start, phase: str, rng):
  """Waits for an event of `phase` ('LeNet training', 'evaluation',
  'checkpoint save' or 'training') at a step drawn ahead of the resumed one;
  returns (time, what) of it, or None when the process ended first."""
  leg, first = start.leg, start.resumed_from
  ahead = range(  # the steps a kill may wait for: not the last
    first + leg.log_every,
    min(first + AHEAD * leg.eval_every, leg.num_steps - 1) + 1,
    leg.log_every,
  )
  if phase == 'LeNet training':
    t = start.until(lambda: start.saw(LENET_LINE))
    return t and (t, 'its phase line')
  if phase == 'evaluation':
    step = int(rng.choice([s for s in ahead if leg.is_eval(s)]))
    t = start.until(lambda: start.row_at(step))
    return t and (t, f'the training row of step {step}')
  if phase == 'checkpoint save':
    step = int(rng.choice([s for s in ahead if s % leg.checkpoint_every == 0]))
    t = start.until(lambda: start.save_from(step))
    return t and (t, f'a save of step {step} or later')
  # training: a row two rows or more after the last save
  steps = [s for s in ahead if s % leg.checkpoint_every >= 2 * leg.log_every]
  step = int(rng.choice(steps))
  t = start.until(lambda: start.row_at(step))
  return t and (t, f'the training row of step {step}')


def lenet_seconds(start: Start) -> float | None:
  """From the LeNet's phase line to its 'done', when the start printed both."""
  t_lenet = start.saw(LENET_LINE)
  done = [
    t
    for t, line in start.lines
    if t_lenet is not None
    and t > t_lenet
    and line.strip().startswith('done in')
  ]
  return done[0] - t_lenet if done else None


class Spans:
  """The median length (s) of each leg's phases, the bounds of the random
  delays: measured in its uninterrupted run, the LeNet's training in the
  later starts (the first compiles it; the others load it from the XLA
  cache)."""

  def __init__(self):
    self.legs, self._lenet = {}, []

  def measure(self, start: Start) -> dict:
    """An evaluation (training row to evaluation row), a save (temporary
    folder seen to gone), the interval between training rows of the first
    run, and the LeNet's training."""
    leg = start.leg
    evals = [
      start.row_at(s, True) - start.row_at(s)
      for s in range(leg.eval_every, leg.num_steps + 1, leg.eval_every)
      if start.row_at(s, True) and start.row_at(s)
    ]
    saves = [b - a for a, b in start.saves.values() if b is not None]
    first = [t for t, r, row in start.train_rows() if r == start.runs[0]]
    self.legs[leg.name] = {
      'evaluation': float(np.median(evals)) if evals else 0.0,
      'checkpoint save': float(np.median(saves)) if saves else 0.0,
      'training': float(np.median(np.diff(first))) if len(first) > 1 else 0.0,
      'LeNet training': lenet_seconds(start) or 0.0,
    }
    return self.legs[leg.name]

  def observe(self, start: Start) -> None:
    seconds = lenet_seconds(start)
    if seconds is not None:
      self._lenet.append(seconds)
      self.legs[start.leg.name]['LeNet training'] = float(
        np.median(self._lenet)
      )

  def bound(self, leg: Leg, phase: str) -> float:
    return self.legs[leg.name][phase]


# ---- Comparison with the uninterrupted run.


def _numbers(tree, prefix='') -> dict:
  """{path: value} of the numbers and strings of a JSON tree."""
  if isinstance(tree, dict):
    out = {}
    for k, v in tree.items():
      if k not in TIMING:
        out |= _numbers(v, f'{prefix}{k}.')
    return out
  if isinstance(tree, list):
    out = {}
    for i, v in enumerate(tree):
      out |= _numbers(v, f'{prefix}{i}.')
    return out
  return {prefix[:-1]: tree}


def _difference(a: dict, b: dict, what: str) -> float:
  """The largest |a - b| over the keys; inf where keys or non-numbers differ."""
  if a.keys() != b.keys():
    print(f'    {what}: keys differ: {sorted(a.keys() ^ b.keys())[:5]}')
    return float('inf')
  worst = 0.0
  for k, x in a.items():
    y = b[k]
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
      same = x == y or (math.isnan(x) and math.isnan(y))
      d = 0.0 if same else abs(x - y)
    else:
      d = 0.0 if x == y else float('inf')
    if d > 0:
      print(f'    {what}: {k}: {x!r} against {y!r}')
    worst = max(worst, d)
  return worst


def _last_rows(run: str) -> dict:
  """{'<step>.<key>': value}: the last value of each key at each step."""
  out = {}
  for row in _rows(os.path.join(run, rundir.METRICS)):
    for k, v in row.items():
      if k not in ('step', *TIMING):
        out[f'{row["step"]}.{k}'] = v
  return out


def compare(run: str, straight: str) -> tuple[float, bool, str]:
  """(largest absolute difference, whether the checkpoints' arrays are
  equal bit for bit, what was compared) between two finished run
  directories: final checkpoint, results.json, metrics.jsonl."""
  _, _, a = checkpoint.restore_run(run)
  _, _, b = checkpoint.restore_run(straight)
  leaves_a, tree_a = jax.tree.flatten(a)
  leaves_b, tree_b = jax.tree.flatten(b)
  worst = 0.0 if tree_a == tree_b else float('inf')
  bitwise = tree_a == tree_b
  for x, y in zip(leaves_a, leaves_b):
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.dtype != y.dtype:
      worst, bitwise = float('inf'), False
      continue
    bitwise &= x.tobytes() == y.tobytes()
    x = np.atleast_1d(x).astype(np.float64)
    y = np.atleast_1d(y).astype(np.float64)
    diff = np.abs(x - y)
    diff[np.isnan(diff)] = np.inf  # NaN in one of them
    diff[np.isnan(x) & np.isnan(y)] = 0.0
    if diff.size:
      worst = max(worst, float(np.max(diff)))
  results = [rundir.read_results(p) or {} for p in (run, straight)]
  worst = max(worst, _difference(*map(_numbers, results), 'results.json'))
  rows = [_last_rows(p) for p in (run, straight)]
  worst = max(worst, _difference(*rows, 'metrics.jsonl'))
  steps = len({k.split('.')[0] for k in rows[0]})
  what = (
    f'step {int(a.step)}, {len(leaves_a)} checkpoint arrays, '
    f'{len(_numbers(results[0]))} results.json values, {len(rows[0])} '
    f'metrics.jsonl values at {steps} steps'
  )
  return worst, bitwise, what


# ---- The command.


def machine() -> str:
  model, avx512 = '?', False
  try:
    out = subprocess.run(
      ['lscpu'], check=False, capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
      key, _, value = line.partition(':')
      if key.strip() == 'Model name':
        model = value.strip()
      if key.strip() == 'Flags':
        avx512 = 'avx512f' in value.split()
  except OSError:
    pass
  return (
    f'{model}, {os.cpu_count()} cores, AVX-512 {"yes" if avx512 else "no"}; '
    f'jax {jax.__version__}, {jax.default_backend()}'
  )


def _minutes(seconds: float) -> str:
  return f'{int(seconds // 60)} min {seconds % 60:.0f} s'


class Round:
  """A run of a leg's command in its own workdir, killed and resumed."""

  def __init__(self, leg: Leg, number: int, directory: str):
    self.leg, self.number = leg, number
    self.workdir = os.path.join(directory, leg.name, f'killed_{number}')
    self.kills = self.starts = self.resumes = self.from_checkpoint = 0

  @property
  def name(self) -> str:
    return f'{self.leg.name}#{self.number}'


class Campaign:
  """The kills of one command line: the starts, what each kill landed in,
  the comparisons and the largest difference."""

  def __init__(self, directory: str, env: dict):
    self.directory, self.env = directory, env
    self.spans = Spans()
    self.kills = collections.Counter()  # by what was under way
    self.sweep = collections.Counter()  # by what the vmapped program did
    self.worst, self.bitwise, self.compared = 0.0, True, 0
    self.rounds, self.failures = [], []

  def start(self, r: Round) -> Start:
    r.starts += 1
    r.resumes += r.kills > 0  # every start after a kill resumes
    return Start(r.leg, r.workdir, self.env)

  def ended(self, r: Round, start: Start) -> None:
    """Notes what a start that is over said."""
    r.from_checkpoint += start.resumed()
    self.spans.observe(start)

  def finish(self, r: Round, start: Start | None = None) -> None:
    """Runs round `r` to its end (unless `start` has ended it) and compares
    each of its runs with the uninterrupted one."""
    if start is None:
      start = self.start(r)
      start.finish()
    self.ended(r, start)
    self.rounds.append(r)
    if start.proc.returncode:  # a finding: noted, the kills go on
      error = next((l for _, l in reversed(start.lines) if l.strip()), '?')
      self.failures.append(f'{r.name}: {error}')
      print(
        f'  {r.name} FAILED (exit {start.proc.returncode}) after {r.kills} '
        f'kills; its output ends:\n{start.tail(12)}',
        flush=True,
      )
      return
    straight = os.path.join(self.directory, r.leg.name, 'straight')
    for run_dir, ref in zip(r.leg.runs(r.workdir), r.leg.runs(straight)):
      d, bitwise, what = compare(run_dir, ref)
      self.worst = max(self.worst, d)
      self.bitwise &= bitwise
      self.compared += 1
      print(
        f'  {os.path.relpath(run_dir, self.directory)} finished: {r.kills} '
        f'kills, {r.resumes} resumes ({r.from_checkpoint} from a '
        f'checkpoint); against the uninterrupted run: {what}; largest '
        f'absolute difference {d}'
        f'{"" if bitwise else " (checkpoint bytes differ)"}',
        flush=True,
      )

  def report(self, total: int) -> bool:
    """Prints the kills by phase and the totals; whether all is well."""
    print('kills by what was under way when they landed:')
    for p in (*PHASES, START_UP):
      extra = ', '.join(f'{s} {n}' for s, n in sorted(self.sweep.items()))
      extra = f' ({extra})' if p == 'vmapped sweep point' and extra else ''
      print(f'  {p:20s} {self.kills[p]:3d}{extra}')
    print(
      f'kills {total}, starts {sum(r.starts for r in self.rounds)}, resumes '
      f'{sum(r.resumes for r in self.rounds)} '
      f'({sum(r.from_checkpoint for r in self.rounds)} from a checkpoint), '
      f'finished runs compared {self.compared}, largest absolute difference '
      f'{self.worst}'
    )
    missing = [p for p in PHASES if not self.kills[p]]
    if missing:
      print(f'error: no kill landed in {", ".join(missing)}')
    if not self.bitwise:
      print('error: checkpoint bytes differ')
    for failure in self.failures:
      print(f'error: a start failed: {failure}')
    return (
      self.worst == 0.0 and self.bitwise and not missing and not self.failures
    )


def run(args) -> bool:
  directory = os.path.abspath(
    args.workdir or tempfile.mkdtemp(prefix='gan_jax_faults_')
  )
  if os.path.isdir(directory) and os.listdir(directory):
    raise SystemExit(f'error: --workdir {directory} is not empty')
  os.makedirs(directory, exist_ok=True)
  print(
    f'fault injection: {args.kills} SIGKILLs, seed {args.seed}, in {directory}'
  )
  print(
    f'machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start'
  )
  data_dir = args.data_dir or os.path.join(directory, 'tfds')
  if not args.data_dir:
    t = time.perf_counter()
    data.prepare('mnist', data_dir, args.manual_dir)
    print(f'MNIST prepared in {data_dir} ({time.perf_counter() - t:.0f} s)')
  legs = {
    # Relative to the repository, where every start runs.
    'mnist': mnist_leg(
      directory,
      os.path.relpath(os.path.abspath(args.manual_dir), REPO),
      data_dir,
    ),
    'sweep': sweep_leg(directory),
  }
  for leg in legs.values():
    print(f'{leg.name}: python launch.py {" ".join(leg.args)} --workdir=...')
  c = Campaign(
    directory,
    dict(
      os.environ,
      JAX_COMPILATION_CACHE_DIR=os.path.join(directory, 'xla'),
      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0',
    ),
  )

  # The uninterrupted runs, and the lengths of their phases.
  for leg in legs.values():
    t = time.perf_counter()
    start = Start(leg, os.path.join(directory, leg.name, 'straight'), c.env)
    if start.finish():
      print(start.tail(), file=sys.stderr)
      raise SystemExit(f'error: the uninterrupted {leg.name} run failed')
    spans = c.spans.measure(start)
    print(
      f'uninterrupted {leg.name} run: {time.perf_counter() - t:.0f} s; median '
      + ', '.join(f'{k} {v:.2f} s' for k, v in spans.items() if v),
      flush=True,
    )

  rng = np.random.default_rng(args.seed)
  rounds = {name: Round(leg, 1, directory) for name, leg in legs.items()}
  k = 0
  while k < args.kills:
    phase = _fewest(c.kills, PHASES, rng)
    if phase == 'vmapped sweep point':
      leg, target = legs['sweep'], _fewest(c.sweep, SWEEP_AIMS, rng)
    else:
      leg, target = legs['mnist'], phase
    r = rounds[leg.name]
    if leg.resumes_at(r.workdir) >= leg.num_steps - leg.eval_every:
      c.finish(r)  # only its last evaluation is left
      r = rounds[leg.name] = Round(leg, r.number + 1, directory)
    if target == 'LeNet training':
      shutil.rmtree(leg.cache_dir, ignore_errors=True)
    start = c.start(r)
    event = aim(start, target, rng)
    bound = c.spans.bound(leg, target)
    delay = float(rng.uniform(0, bound))
    if event is not None:
      time.sleep(max(0.0, event[0] + delay - time.perf_counter()))
    if event is None or not start.kill():
      print(f'  {r.name} ended by itself before its kill', flush=True)
      c.finish(r, start)
      rounds[leg.name] = Round(leg, r.number + 1, directory)
      continue
    c.ended(r, start)
    k += 1
    r.kills += 1
    got, detail = landed(start)
    c.kills[got] += 1
    if got == 'vmapped sweep point':
      c.sweep[detail.split(':')[0]] += 1
    print(
      f'kill {k:2d}/{args.kills} {r.name} start {r.starts} (from step '
      f'{start.resumed_from}): aimed at {target}, {delay:.2f} s (of <= '
      f'{bound:.2f}) after {event[1]} -> {got} ({detail}) '
      f'[{time.perf_counter() - start.t0:.0f} s]',
      flush=True,
    )
  for r in rounds.values():
    if r.starts:
      c.finish(r)
  return c.report(k)


def _fewest(counts, names, rng) -> str:
  """One of `names` with the fewest counts, drawn by `rng`."""
  least = min(counts[n] for n in names)
  return str(rng.choice([n for n in names if counts[n] == least]))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--kills', type=int, default=50, help='SIGKILLs')
  parser.add_argument(
    '--seed', type=int, default=0, help='of the phases and delays drawn'
  )
  parser.add_argument(
    '--workdir', default=None, help='a new or empty folder (default: a temp)'
  )
  parser.add_argument(
    '--manual_dir',
    default=os.path.join(os.path.dirname(REPO), 'shared', 'data', 'mnist'),
    help='the MNIST original .gz files',
  )
  parser.add_argument(
    '--data_dir', default=None, help='a TFDS folder with MNIST prepared'
  )
  args = parser.parse_args()
  sys.stdout.reconfigure(line_buffering=True)  # progress shows in a pipe
  t0 = time.perf_counter()
  busy, own = load.busy_seconds(), sum(os.times()[:4])
  ok = run(args)
  seconds = time.perf_counter() - t0
  other = load.busy_seconds() - busy - (sum(os.times()[:4]) - own)
  print(
    f'wall time {_minutes(seconds)}; other processes used {other / seconds:.2f} '
    f'cores meanwhile; load average {os.getloadavg()[0]:.1f} at the end'
  )
  sys.exit(0 if ok else 1)


if __name__ == '__main__':
  main()
