"""Reading run and sweep directories back, and grouping their runs.

Every file is read through gan_jax.rundir, the one place the layout of a run
directory is spelled; an unreadable file is a ReportError.
"""

import dataclasses
import os

from gan_jax import config as config_lib
from gan_jax import rundir
from gan_jax.config import is_seed
from gan_jax.errors import ReportError


@dataclasses.dataclass
class Run:
  """One run directory read back.

  train/evals: rows of its metrics sorted by step, the last one logged for
  each step (a resumed run appends); eval keys lose their 'eval/' prefix.
  """

  path: str
  config: dict
  train: list[dict]
  evals: list[dict]
  results: dict | None  # the final evaluation (rundir.RESULTS)
  sample: str | None  # the newest sample grid (rundir.latest_sample)
  skipped_lines: int = 0  # metrics lines that were not JSON
  # The step of a results file older than the last train step (the run went
  # on and stopped without a final evaluation): not read as the results.
  stale_results: int | None = None


@dataclasses.dataclass
class Group:
  """Runs that differ only in seed, and the overrides that define them."""

  label: str
  overrides: dict
  runs: list[Run]


def _read(reader, directory: str, name: str):
  """reader(directory), the JSON of directory/name or None when absent;
  ReportError when it cannot be read."""
  try:
    return reader(directory)
  except (OSError, ValueError) as e:
    path = os.path.join(directory, name)
    raise ReportError(f'cannot read {path}: {e}') from e


def read_run(path: str) -> Run:
  """The run in `path`: config, metrics, results and newest sample."""
  if not rundir.is_run(path):
    raise ReportError(f'{path} is not a run directory (no {rundir.CONFIG})')
  train, evals, bad = rundir.read_metrics(path)
  results = _read(rundir.read_results, path, rundir.RESULTS)
  stale, last = None, train[-1]['step'] if train else None
  if results and last is not None and results.get('step', last) < last:
    stale, results = results['step'], None
  return Run(
    path=path,
    config=_read(rundir.read_config, path, rundir.CONFIG),
    train=train,
    evals=evals,
    results=results,
    sample=rundir.latest_sample(path),
    skipped_lines=bad,
    stale_results=stale,
  )


def read_runs(path: str) -> list[Run]:
  """The run in `path`, or the runs of its model_<i>/ directories."""
  if rundir.is_run(path):
    return [read_run(path)]
  return [read_run(p) for p in rundir.model_dirs(path)]


def read_sweep(path: str) -> list[tuple[dict, Run | None]]:
  """(point, run) per run of each sweep index point, in the file's order.

  A point whose workdir holds model_<i>/ directories gives one pair per
  model; a point with no run directory yet gives (point, None).
  """
  index = _read(rundir.read_sweep_index, path, rundir.SWEEP_INDEX)
  if not isinstance(index, dict) or not isinstance(index.get('points'), list):
    raise ReportError(f'{path}/{rundir.SWEEP_INDEX} has no list of "points"')
  pairs = []
  for i, point in enumerate(index['points']):
    if not isinstance(point, dict) or 'name' not in point:
      raise ReportError(f'{path}/{rundir.SWEEP_INDEX}: point {i} has no "name"')
    runs = read_runs(os.path.join(path, point.get('workdir', point['name'])))
    pairs += [(point, r) for r in runs] or [(point, None)]
  return pairs


def sweep_groups(pairs, prefix: str = '') -> tuple[list[Group], list[str]]:
  """Groups of read_sweep's pairs by point 'group', and notes on points.

  A group's overrides are its points' overrides without the seed (and any
  other field its points do not share). Notes name points without a run
  directory and failed points.
  """
  by_label, points, notes = {}, {}, []
  for point, run in pairs:
    label = prefix + point.get('group', point['name'])
    group = by_label.setdefault(label, Group(label, {}, []))
    points.setdefault(label, []).append(point.get('overrides', {}))
    name, state = prefix + point['name'], point.get('state')
    error = f': {point["error"]}' if point.get('error') else ''
    if run is None:
      notes.append(f'{name}: no run directory (state {state}{error})')
    else:
      group.runs.append(run)
      if state == 'failed':
        notes.append(f'{name}: failed{error}')
  for label, group in by_label.items():
    overrides = points[label]
    varying = set(config_lib.differing(overrides))
    group.overrides = {
      k: v
      for k, v in overrides[0].items()
      if k not in varying and not is_seed(k)
    }
  return [g for g in by_label.values() if g.runs], list(dict.fromkeys(notes))


def _pool(groups: list[Group], found: list[Group], d: str) -> None:
  """Adds `found`'s runs to the group of `groups` with the same label (the
  same overrides required), or appends the group."""
  by_label = {g.label: g for g in groups}
  for group in found:
    same = by_label.get(group.label)
    if same is None:
      groups.append(group)
    elif same.overrides != group.overrides:
      raise ReportError(
        f'{d}: group {group.label} overrides {group.overrides}, the same '
        f'group before it {same.overrides}; pool only shares of one sweep'
      )
    else:
      same.runs += group.runs


def read_groups(
  dirs: list[str], pool: bool = False, progress=None
) -> tuple[list[Group], list[str]]:
  """Groups of every DIR in order, and notes; ReportError on a bad DIR.

  Groups of plain runs and num_models directories get as overrides the
  config fields (other than seed) in which they differ from each other, and
  those that sweeps given beside them override. Several sweeps' groups are
  named DIR/group; with `pool`, groups of the same name in several sweeps
  (shares of the seeds of one study) are one group of all their runs.
  progress(message), when given, hears of each DIR read.
  """
  names = [os.path.basename(os.path.abspath(d)) for d in dirs]
  if len(set(names)) < len(names):
    names = [os.path.normpath(d) for d in dirs]
  groups, notes, plain = [], [], []
  for d, name in zip(dirs, names):
    if not os.path.isdir(d):
      raise ReportError(f'{d} is not a directory')
    if rundir.is_sweep(d):
      prefix = f'{name}/' if len(dirs) > 1 and not pool else ''
      found, more = sweep_groups(read_sweep(d), prefix)
      if not found:
        raise ReportError(
          f'no point of the sweep in {d} has a run directory yet'
        )
      _pool(groups, found, d)
      notes += more
    elif runs := read_runs(d):
      group = Group(name, {}, runs)
      groups.append(group)
      plain.append(group)
    else:
      raise ReportError(
        f'{d} is neither a run directory ({rundir.CONFIG}, {rundir.METRICS}, '
        f'...) nor a sweep directory ({rundir.SWEEP_INDEX}), nor holds '
        'model_<i>/ run directories; pass the --workdir of launch.py.'
      )
    if progress:
      progress(f'read {d}: {sum(len(g.runs) for g in groups)} run(s) so far')
  configs = [config_lib.flatten(g.runs[0].config) for g in plain]
  keys = [k for g in groups for k in g.overrides]
  keys += config_lib.differing(configs)
  for key in dict.fromkeys(k for k in keys if k != 'seed'):
    for group, config in zip(plain, configs):
      if key in config:  # absent: a config from before the field existed
        group.overrides.setdefault(key, config[key])
  for run in (r for g in groups for r in g.runs):
    if run.stale_results is not None:
      notes.append(
        f'{run.path}/{rundir.RESULTS}: from step {run.stale_results}, before '
        f'the last train step {run.train[-1]["step"]} (the run went on and '
        'stopped without a final evaluation): not used'
      )
    if run.skipped_lines:
      notes.append(
        f'{run.path}/{rundir.METRICS}: {run.skipped_lines} unreadable '
        'line(s) skipped'
      )
  return groups, notes


def read_references(dirs: list[str]) -> list[dict]:
  """The 'reference' of each sweep index among `dirs` that has one."""
  refs = []
  for d in dirs:
    if rundir.is_sweep(d):
      index = _read(rundir.read_sweep_index, d, rundir.SWEEP_INDEX)
      ref = index.get('reference')
      if isinstance(ref, dict) and isinstance(ref.get('rows'), list):
        refs.append(ref)
  return refs
