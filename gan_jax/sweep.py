"""Sweeps: expand an experiment file's `get_hyper(arg)`, run every point, index.

  python launch.py --config=experiments/<study>.py[:arg] --workdir=DIR --sweep \
      [--launcher=local|vmap|slurm|submitit_local] [--parallel=N]

The base config is the file's `get_config(arg)` with the command line's
`--config.*` overrides; a point's config is the base with the point's fields
set. A point that sets `loss` first gets that loss's defaults
(`losses.apply_defaults`, as `get_config` does), then its other fields.
Each point trains into `DIR/<point name>` (e.g. `DIR/loss=hinge,seed=1`), a
plain run directory; `DIR/sweep.json` indexes them:
  {"config": "experiments/<study>.py:arg", "overrides": {command line},
   "base": {base config}, "reference": {the file's get_reference(arg)},
   "points": [{"name", "overrides", "group",
   "workdir", "state": pending|partial|running|done|failed, "step",
   "error", "holder", "results"}]}
`group` is the name without the seed; `step` is the newest checkpoint's;
`results` is results.json's "metrics"; a `running` point is held by another
process (`holder`: its lease, gan_jax.lease). The index is rebuilt from the
run directories on every launch, so it always agrees with them. Rerunning
the command resumes: done points are skipped, partial ones resume from
their checkpoints, and points another process trains (an earlier launch
still running, a requeued job's twin) are skipped, with a line saying so.

Launchers: `local` runs points one after another in this process, or
`--parallel=N` at once as subprocesses (each given one GPU, in turn, when the
machine has several); `vmap` trains the points that differ only in
`train.VMAPPED_FIELDS` (seeds, Adam lr/b1/b2) as one vmapped program;
`slurm` submits a job array through submitit (`submitit_local` runs the same
jobs as local processes, for trying the SLURM path on one machine).
"""

import dataclasses
import importlib.util
import json
import os
import subprocess
import sys

import ml_collections

from gan_jax import checkpoint, console, lease, losses, registry, rundir
from gan_jax import train, validate
from gan_jax import config as config_lib
from gan_jax.config import is_seed
from gan_jax.errors import ConfigError, Error, Interrupted, LeaseHeld

LAUNCHERS = ('local', 'vmap', 'slurm', 'submitit_local')


@dataclasses.dataclass(frozen=True)
class Slurm:
  """Job options of the slurm/submitit_local launchers."""

  partition: str | None = None
  timeout_min: int = 240
  gpus: int = 0
  cpus: int | None = None


def experiment_path(spec: str) -> str:
  """The file of 'path/to/file.py[:arg]'; ConfigError when it is absent."""
  path = spec.partition(':')[0]
  if not os.path.exists(path):
    raise ConfigError(f'config file {path} not found.')
  return path


def load_experiment(spec: str):
  """'path/to/file.py[:arg]' -> (the experiment module, arg or None)."""
  path, arg = experiment_path(spec), spec.partition(':')[2]
  registry.importable(path)
  module_spec = importlib.util.spec_from_file_location('_experiment', path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module, arg or None


def expand(module, arg) -> list[dict]:
  """The points of `module.get_hyper(arg)`; checks they are well formed."""
  if not hasattr(module, 'get_hyper'):
    raise ConfigError(
      f'{module.__file__} defines no get_hyper(arg): it is not a sweep; '
      'run it without --sweep.'
    )
  points = list(module.get_hyper(arg))
  names = [point_name(p) for p in points]
  if not points or len(set(names)) < len(names):
    raise ConfigError(
      f'get_hyper({arg!r}) of {module.__file__} gives '
      f'{"no points" if not points else "repeated points"}; fix the sweep.'
    )
  return points


def _format(value) -> str:
  if isinstance(value, (tuple, list)):
    return 'x'.join(_format(v) for v in value)
  return str(value).replace('/', '_')


def point_name(overrides: dict) -> str:
  """'field=value,...' in the point's field order; also its directory."""
  return ','.join(f'{k}={_format(v)}' for k, v in overrides.items()) or 'base'


def group_name(overrides: dict) -> str:
  """The point's name without its seeds: a group's points differ in seeds."""
  return point_name({k: v for k, v in overrides.items() if not is_seed(k)})


def apply(
  config, overrides: dict, loss_defaults: bool = True
) -> ml_collections.ConfigDict:
  """A copy of `config` with dotted `overrides` set.

  With `loss_defaults`, setting `loss` applies that loss's defaults before
  the other overrides are set, so that the point's own fields win.
  """
  c = config.copy_and_resolve_references()
  items = sorted(overrides.items(), key=lambda kv: kv[0] != 'loss')
  for field, value in items:
    try:
      config_lib.set_field(c, field, value)
    except ConfigError as e:
      raise ConfigError(
        f'the sweep sets config.{field}, which the config does not have; '
        'fix get_hyper.'
      ) from e
    if field == 'loss' and loss_defaults:
      losses.apply_defaults(c)
  return c


class Sweep:
  """A sweep directory: its points, their configs, and sweep.json."""

  def __init__(self, directory: str, spec: str, cli_overrides: dict):
    self.directory, self.spec = directory, spec
    self.cli_overrides = {k: _jsonable(v) for k, v in cli_overrides.items()}
    module, arg = load_experiment(spec)
    base = module.get_config(arg)
    for field, value in cli_overrides.items():
      base = apply(base, {field: value}, loss_defaults=False)
    self.base = base
    # The paper's numbers for this study, if the file gives them (see
    # report.tables.paper_table): {'source', 'rows': [{'where', 'metrics'}]}.
    get_reference = getattr(module, 'get_reference', None)
    self.reference = get_reference(arg) if get_reference else None
    self.points = expand(module, arg)
    self._module, self._arg = module, arg
    self.configs = [apply(base, p) for p in self.points]
    self.names = [point_name(p) for p in self.points]
    self.errors = {}  # name -> message of a point that failed in this launch
    old = self._read()
    if old and (old['config'], _fixed(old['overrides'])) != (
      spec,
      _fixed(self.cli_overrides),
    ):
      raise ConfigError(
        f'{directory} holds the sweep {old["config"]} with overrides '
        f'{old["overrides"]}; rerun that command to resume it (a changed '
        f'{", ".join(rundir.RESUMABLE_CHANGES)} extends or shortens it), or '
        'pass a new --workdir.'
      )
    if old:
      self.errors = {
        p['name']: p['error'] for p in old['points'] if p.get('error')
      }

  def check_not_overridden(self) -> None:
    """ConfigError when the command line sets a field that every point
    sets again: a --config.<field>, or a config argument that changes such
    a field of get_config without changing get_hyper's points."""
    every = set.intersection(*(set(p) for p in self.points))
    for field in self.cli_overrides:
      if field in every:
        raise ConfigError(
          f'--config.{field} is set again by every point of the sweep '
          f'(get_hyper sets {field}): drop it, or run without --sweep.'
        )
    items = [a for a in (self._arg or '').split(',') if a]
    base = config_lib.flatten(
      config_lib.to_dict(self._module.get_config(self._arg))
    )
    for item in items:
      rest = ','.join(a for a in items if a != item) or None
      if expand(self._module, rest) != self.points:
        continue  # the argument shapes the sweep itself
      without = config_lib.flatten(
        config_lib.to_dict(self._module.get_config(rest))
      )
      hidden = sorted(
        f for f in every if f in base and without.get(f) != base.get(f)
      )
      if hidden:
        raise ConfigError(
          f'config argument {item!r} sets {", ".join(hidden)}, which every '
          'point of the sweep sets again (get_hyper): drop it, or run '
          'without --sweep.'
        )

  @classmethod
  def open(cls, directory: str) -> 'Sweep':
    """The sweep that `directory`'s sweep.json describes (for workers)."""
    index = rundir.read_sweep_index(directory)
    if index is None:
      raise ConfigError(
        f'{directory} holds no {rundir.SWEEP_INDEX}: pass a sweep directory '
        'made by launch.py --sweep.'
      )
    return cls(directory, index['config'], index['overrides'])

  def workdir(self, i: int) -> str:
    return os.path.join(self.directory, self.names[i])

  def state(self, i: int) -> tuple[str, int]:
    ckpts = os.path.join(self.workdir(i), rundir.CHECKPOINTS)
    steps = checkpoint.committed_steps(ckpts)
    return rundir.progress(steps, self.configs[i].num_steps)

  def pending(self) -> list[int]:
    """Indices of the points not yet done."""
    return [i for i in range(len(self.points)) if self.state(i)[0] != 'done']

  def holder(self, i: int) -> dict | None:
    """The lease record of the process training point `i`, or None."""
    return lease.holder(self.workdir(i))

  def free(self, i: int) -> bool:
    """Whether point `i` may start here: False (and says so) while another
    process trains it (its lease); that process finishes it."""
    held = self.holder(i)
    if held:
      print(
        f'skipped {self.names[i]}: {lease.describe(held)} is training it',
        flush=True,
      )
    return not held

  def _read(self):
    return rundir.read_sweep_index(self.directory)

  def write_index(self) -> dict:
    """Rebuilds sweep.json from the run directories and returns it."""
    points = []
    for i, (p, name) in enumerate(zip(self.points, self.names)):
      state, step = self.state(i)
      error = None if state == 'done' else self.errors.get(name)
      held = self.holder(i) if state != 'done' else None
      if held:
        state, error = 'running', None
      points.append(
        {
          'name': name,
          'overrides': {k: _jsonable(v) for k, v in p.items()},
          'group': group_name(p),
          'workdir': name,
          'state': 'failed' if error else state,
          'step': step,
          'error': error,
          'holder': held and lease.describe(held),
          'results': (rundir.read_results(self.workdir(i)) or {}).get(
            'metrics'
          ),
        }
      )
    index = {
      'config': self.spec,
      'overrides': self.cli_overrides,
      'base': json.loads(self.base.to_json_best_effort()),
      'reference': self.reference,
      'points': points,
    }
    rundir.write_sweep_index(self.directory, index)
    return index


def _fixed(overrides: dict) -> dict:
  """The overrides a sweep directory is tied to: all but the fields a run
  resumes with changed (rundir.RESUMABLE_CHANGES: more steps extend it)."""
  return {
    k: v for k, v in overrides.items() if k not in rundir.RESUMABLE_CHANGES
  }


def _jsonable(value):
  return list(value) if isinstance(value, tuple) else value


def _train_point(s: Sweep, i: int) -> str | None:
  """Trains point `i` of sweep `s`; returns its error message or None (also
  when another process holds it: that one trains it)."""
  try:
    train.train_and_evaluate(s.configs[i], s.workdir(i))
  except Interrupted:
    raise
  except LeaseHeld as e:
    print(f'skipped {s.names[i]}: {e}', flush=True)
  except Error as e:
    return str(e)
  return None


def run_point(directory: str, i: int) -> str | None:
  """The worker of the parallel and submitit launchers: rebuilds the sweep
  in `directory` from sweep.json's experiment file and overrides, then
  trains point `i` (which validates its config); returns an error or None.
  """
  return _train_point(Sweep.open(directory), i)


def run(
  directory: str,
  spec: str,
  cli_overrides: dict,
  launcher: str = 'local',
  parallel: int = 1,
  slurm: Slurm = Slurm(),
) -> dict:
  """Runs every point not yet done; returns the final sweep.json contents.

  Raises train.Interrupted (after rewriting sweep.json) when a point is
  stopped by a signal: rerunning the same command resumes.
  """
  if launcher not in LAUNCHERS:
    raise ConfigError(
      f'unknown launcher {launcher!r}; valid: {", ".join(LAUNCHERS)}'
    )
  s = Sweep(directory, spec, cli_overrides)
  validate.validate(s.base)  # a mistyped argument the points would hide
  s.check_not_overridden()
  for i, config in enumerate(s.configs):  # every point, before any runs
    validate.validate(config)
    rundir.check_workdir(config, s.workdir(i), allow_config_change=False)
  s.write_index()  # the index exists before any point runs
  todo = s.pending()
  print(
    f'sweep {spec}: {len(s.points)} points, {len(s.points) - len(todo)} done, '
    f'{len(todo)} to run ({launcher}) in {directory}',
    flush=True,
  )
  try:
    if launcher == 'vmap':
      _run_vmapped(s, todo)
    elif launcher in ('slurm', 'submitit_local'):
      _run_submitit(s, [i for i in todo if s.free(i)], launcher, slurm)
    elif parallel > 1:
      _run_parallel(s, todo, parallel)
    else:
      for i in todo:
        if s.free(i):
          print(f'[{i + 1}/{len(s.points)}] {s.names[i]}', flush=True)
          _record(s, i, _train_point(s, i))
  finally:
    index = s.write_index()
  for p in index['points']:
    if p['state'] == 'failed':
      print(f'failed: {p["name"]}: {p["error"]}')
    elif p['state'] == 'running':
      print(f'still running: {p["name"]} ({p["holder"]})')
  return index


def _record(s: Sweep, i: int, error: str | None) -> None:
  """Notes a point's outcome and rewrites sweep.json."""
  if error:
    s.errors[s.names[i]] = error
  else:
    s.errors.pop(s.names[i], None)
  s.write_index()


def _run_vmapped(s: Sweep, todo: list[int]) -> None:
  """Points differing only in VMAPPED_FIELDS train as one program each."""
  groups = {}
  for i in todo:
    rest = {
      k: v for k, v in s.points[i].items() if k not in train.VMAPPED_FIELDS
    }
    groups.setdefault(json.dumps(rest, sort_keys=True, default=str), []).append(
      i
    )
  for members in groups.values():
    members = [i for i in members if s.free(i)]
    if not members:
      continue
    names = ', '.join(s.names[i] for i in members)
    print(f'{len(members)} model(s) in one program: {names}', flush=True)
    error = None
    try:
      train.train_models(
        [s.configs[i] for i in members], [s.workdir(i) for i in members]
      )
    except Interrupted:
      raise
    except LeaseHeld as e:
      print(f'skipped {names}: {e}', flush=True)
    except Error as e:
      error = str(e)
    for i in members:
      _record(s, i, error)


def _gpus() -> list[str]:
  """GPU indices of this machine (CUDA_VISIBLE_DEVICES or nvidia-smi)."""
  visible = os.environ.get('CUDA_VISIBLE_DEVICES')
  if visible is not None:
    return [v for v in visible.split(',') if v]
  try:
    out = subprocess.run(
      ['nvidia-smi', '--list-gpus'], capture_output=True, text=True, timeout=30
    ).stdout
  except (OSError, subprocess.SubprocessError):
    return []
  return [str(i) for i, line in enumerate(out.splitlines()) if line.strip()]


def _worker_command(directory: str, i: int) -> list[str]:
  return [sys.executable, '-m', 'gan_jax.sweep', directory, str(i)]


def _run_parallel(s: Sweep, todo: list[int], parallel: int) -> None:
  """Up to `parallel` points at once as subprocesses, one GPU each if any."""
  gpus = _gpus()
  free = list(range(parallel))  # worker slots; slot k uses gpus[k % n]
  running, queue = {}, list(todo)
  while queue or running:
    while queue and free:
      i = queue.pop(0)
      if not s.free(i):
        continue
      slot = free.pop(0)
      env = dict(os.environ)
      if gpus:
        env['CUDA_VISIBLE_DEVICES'] = gpus[slot % len(gpus)]
      log = open(os.path.join(s.directory, f'.{s.names[i]}.log'), 'a')
      proc = subprocess.Popen(
        _worker_command(s.directory, i),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
      )
      running[proc.pid] = (proc, i, slot, log)
      print(f'started {s.names[i]} (pid {proc.pid})', flush=True)
    if not running:
      break
    pid, status = os.wait()
    if pid not in running:
      continue
    proc, i, slot, log = running.pop(pid)
    log.close()
    free.append(slot)
    code = os.waitstatus_to_exitcode(status)
    error = None
    if code:
      with open(log.name) as f:
        lines = f.read().strip().splitlines() or ['(no output)']
      error = f'exit {code}: {lines[-1]} (log: {log.name})'
    _record(s, i, error)


def _run_submitit(s: Sweep, todo: list[int], launcher: str, slurm: Slurm):
  """One job array through submitit; waits for every job."""
  import submitit  # pylint: disable=g-import-not-at-top

  if not todo:
    return
  cluster = 'slurm' if launcher == 'slurm' else 'local'
  executor = submitit.AutoExecutor(
    folder=os.path.join(s.directory, '.submitit', '%j'), cluster=cluster
  )
  executor.update_parameters(
    name=os.path.basename(os.path.abspath(s.directory)),
    timeout_min=slurm.timeout_min,
    gpus_per_node=slurm.gpus,
    cpus_per_task=slurm.cpus,
    slurm_partition=slurm.partition,
  )
  jobs = executor.map_array(run_point, [s.directory] * len(todo), todo)
  print(f'submitted job(s) {", ".join(j.job_id for j in jobs)}', flush=True)
  for i, job in zip(todo, jobs):
    try:
      error = job.result()
    except Exception as e:  # submitit re-raises the job's failure
      error = f'job {job.job_id} failed: {str(e).strip().splitlines()[-1]}'
    _record(s, i, error)


def main(argv):
  """Worker entry point: `python -m gan_jax.sweep SWEEP_DIR INDEX`."""
  if len(argv) != 3 or not argv[2].isdigit():
    sys.exit('error: usage: python -m gan_jax.sweep SWEEP_DIR POINT_INDEX')
  directory, i = argv[1], int(argv[2])
  console.quiet_third_party()
  points = (rundir.read_sweep_index(directory) or {}).get('points')
  if points is not None and i >= len(points):
    sys.exit(
      f'error: {directory} has no point {i}: its {rundir.SWEEP_INDEX} lists '
      f'points 0 to {len(points) - 1}.'
    )
  try:
    error = run_point(directory, i)
  except Error as e:
    error = str(e)
  if error:
    sys.exit(f'error: {error}')


if __name__ == '__main__':
  main(sys.argv)
