"""A study's records: the small files of a report folder that outlive the
run directories, and the samples of our values read back from them.

A records folder (what `python -m gan_jax.report DIR --out OUT` writes to
OUT, committed under docs/results/<study>/) holds
  evals_runs.csv   each run's evaluations: group, run, metric, step, value
  groups.json      per group: its overrides and its first run's flat config
  reference.json   the papers' rows beside the runs (the experiment file's
                   get_reference), when the runs came from a sweep
  results.csv      per group: mean and std over runs of the final metrics
  train_runs.csv   each run's train rows (TRAIN_KEYS, 6 significant
                   digits), at most TRAIN_ROWS steps a run, evenly spaced,
                   the last kept
A metric is read per run from evals_runs.csv; a records folder without it
(runs reported before it existed) gives only results.csv's mean, std and n.
`groups_of` turns a records folder back into the report's groups, so the
report page is redrawn from the records alone (`report --records`).
"""

import csv
import dataclasses
import json
import os

from gan_jax import rundir
from gan_jax.config import flatten, is_seed
from gan_jax.errors import ReportError
from gan_jax.report.read import Group, Run
from gan_jax.report.stats import Row
from gan_jax.report.verdict import Sample

EVALS_RUNS = 'evals_runs.csv'
GROUPS = 'groups.json'
REFERENCE = 'reference.json'
RESULTS_CSV = 'results.csv'
TRAIN_RUNS = 'train_runs.csv'
TRAIN_KEYS = (
  'd_loss',
  'g_loss',
  'd_real',
  'd_fake',
  'g_grad_norm',
  'd_grad_norm',
  'rt',
  'ada_p',
  'steps_per_sec',
  'program_models',
)
TRAIN_ROWS = 100


@dataclasses.dataclass
class Records:
  """One records folder read back.

  curves[group][metric][run] = {step: value}; summaries[group][metric] =
  (mean, std or None, n, last train step) of results.csv; configs[group]:
  the group's flat config (groups.json), else results.csv's overrides;
  real: the same metrics of real data under the runs' protocol.
  """

  path: str
  curves: dict
  summaries: dict
  configs: dict
  reference: dict | None
  real: dict  # results.csv's real-data rows: {label: {metric: value}}
  train: dict = dataclasses.field(default_factory=dict)  # [group][run] rows
  overrides: dict = dataclasses.field(default_factory=dict)  # [group]

  def groups(self) -> list[str]:
    """Group names, in the order of the files."""
    return list(dict.fromkeys([*self.curves, *self.summaries, *self.configs]))

  def has(self, group: str, metric: str) -> bool:
    """Whether `group` holds values of `metric`."""
    return metric in self.curves.get(group, {}) or metric in (
      self.summaries.get(group, {})
    )

  def last_step(self, group: str, metric: str) -> int:
    """The last step at which every run of `group` evaluated `metric`."""
    runs = self._runs(group, metric)
    return min(max(curve) for curve in runs.values())

  def _runs(self, group: str, metric: str) -> dict:
    runs = self.curves.get(group, {}).get(metric)
    if not runs:
      raise ReportError(
        f'{self.path}: no evaluations of {metric!r} for group {group!r} '
        f'(groups: {", ".join(self.curves) or "none"})'
      )
    return runs

  def at(self, group: str, metric: str, step: int | None = None):
    """(Sample, step): our values of `metric` in `group` at `step`
    (default: last_step), one per run; results.csv's mean, std and n (at
    its last train step) where the metric has no curves (runs reported
    before per-run records; d_real, d_fake)."""
    curves = self.curves.get(group, {})
    if metric not in curves and metric in self.summaries.get(group, {}):
      mean, std, n, last = self.summaries[group][metric]
      return Sample.summary(mean, std, n), last
    runs = self._runs(group, metric)
    step = self.last_step(group, metric) if step is None else step
    missing = [r for r, c in runs.items() if step not in c]
    if missing:
      raise ReportError(
        f'{self.path}: group {group!r} has no {metric!r} at step {step} in '
        f'runs {", ".join(missing)}'
      )
    names = sorted(runs)
    deterministic = bool(self.configs.get(group, {}).get('deterministic'))
    values = [runs[r][step] for r in names]
    keys = [seed_key(r) for r in names]
    return Sample.of(values, keys, deterministic), step

  def sample(self, group: str, metric: str, step: int | None = None) -> Sample:
    """`at`'s Sample."""
    return self.at(group, metric, step)[0]

  def steps(self, group: str, metric: str) -> list[int]:
    """The steps at which every run of `group` evaluated `metric`."""
    runs = self._runs(group, metric).values()
    return sorted(set.intersection(*(set(c) for c in runs)))


def seed_key(run: str) -> str:
  """What pairs a run with its twins in other groups: the seed fields of a
  sweep point's name ('loss=minimax,seed=0' -> 'seed=0'), else the name
  (model_<i> of num_models runs, one seed each)."""
  seeds = [p for p in run.split(',') if is_seed(p.partition('=')[0])]
  return ','.join(seeds) or run


def _json(path: str):
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise ReportError(f'cannot read {path}: {e}') from e


def _rows(path: str) -> list[dict]:
  """The rows of a CSV file as dicts; none when it is absent."""
  if not os.path.exists(path):
    return []
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def _curves(path: str) -> dict:
  curves = {}
  for row in _rows(path):
    runs = curves.setdefault(row['group'], {}).setdefault(row['metric'], {})
    runs.setdefault(row['run'], {})[int(row['step'])] = float(row['value'])
  return curves


SUMMARY_COLUMNS = ('group', 'n', 'n_eval', 'step')


def _summaries(path: str) -> tuple[dict, dict, dict]:
  """results.csv as ({group: {metric: (mean, std, n, step)}}, {group:
  {override: value}}, {real-data row: {metric: value}})."""
  out, overrides, real = {}, {}, {}
  for row in results_rows(path):
    if row.n == 0:
      real[row.group] = {
        k: mean for k, (mean, _) in row.stats.items() if mean is not None
      }
      continue
    step = int(row.step) if row.step.isdigit() else None
    overrides[row.group] = row.overrides
    out[row.group] = {
      k: (mean, std, row.n, step)
      for k, (mean, std) in row.stats.items()
      if mean is not None
    }
  return out, overrides, real


def _train(path: str) -> dict:
  """train_runs.csv as {group: {run: [row by step]}}."""
  out = {}
  for row in _rows(path):
    step = int(row['step'])
    values = {
      k: float(c)
      for k, c in row.items()
      if k not in ('group', 'run', 'step') and c != ''
    }
    runs = out.setdefault(row['group'], {})
    runs.setdefault(row['run'], []).append({'step': step} | values)
  return {
    g: {r: sorted(rows, key=lambda x: x['step']) for r, rows in runs.items()}
    for g, runs in out.items()
  }


def load(path: str) -> Records:
  """The records folder `path`; ReportError when it holds none."""
  if not os.path.isdir(path):
    raise ReportError(f'{path}: no such records folder')
  groups = _json(os.path.join(path, GROUPS)) or {}
  summaries, overrides, real = _summaries(os.path.join(path, RESULTS_CSV))
  records = Records(
    path,
    _curves(os.path.join(path, EVALS_RUNS)),
    summaries,
    overrides | {g: v.get('config', {}) for g, v in groups.items()},
    _json(os.path.join(path, REFERENCE)),
    real,
    _train(os.path.join(path, TRAIN_RUNS)),
    overrides | {g: v.get('overrides', {}) for g, v in groups.items()},
  )
  if not (records.curves or records.summaries):
    raise ReportError(
      f'{path}: neither {EVALS_RUNS} nor {RESULTS_CSV}; write it with '
      f'python -m gan_jax.report RUN_DIRS --out {path}'
    )
  return records


def write_curves(path: str, rows) -> None:
  """evals_runs.csv of `rows` (group, run, metric, step, value)."""
  rundir.write_csv(
    path,
    [['group', 'run', 'metric', 'step', 'value']]
    + [[g, r, m, int(s), repr(float(v))] for g, r, m, s, v in rows],
  )


def write_groups(path: str, groups: dict[str, dict]) -> None:
  """groups.json: {group: {'overrides': {...}, 'config': {flat config}}},
  one group a line. A config with 'deterministic': True reads as a sample
  without spread (a closed-form game)."""
  lines = [
    f'{json.dumps(name)}: {json.dumps(entry, sort_keys=True)}'
    for name, entry in groups.items()
  ]
  rundir.write_text(path, '{\n' + ',\n'.join(lines) + '\n}\n')


def group_entry(g) -> dict:
  """A read.Group's groups.json entry: its overrides and the flat config of
  its first run."""
  return {'overrides': g.overrides, 'config': flatten(g.runs[0].config)}


def write_reference(path: str, reference: dict) -> None:
  """reference.json: one experiment file's get_reference()."""
  rundir.write_text(path, json.dumps(reference, indent=1) + '\n')


def write_train(path: str, groups) -> None:
  """train_runs.csv of read.Groups: a row per run and step (group, run,
  step, then each of TRAIN_KEYS any run logged, '' where this one did not),
  at no more than TRAIN_ROWS of each run's logged steps, evenly spaced,
  the last kept."""
  runs = [(g, r) for g in groups for r in g.runs]
  keys = [
    k
    for k in TRAIN_KEYS
    if any(
      isinstance(row.get(k), (int, float)) for _, r in runs for row in r.train
    )
  ]
  table = [['group', 'run', 'step', *keys]]
  for g, r in runs:
    rows = r.train
    if len(rows) > TRAIN_ROWS:
      keep = {
        round(i * (len(rows) - 1) / (TRAIN_ROWS - 1)) for i in range(TRAIN_ROWS)
      }
      rows = [row for i, row in enumerate(rows) if i in keep]
    name = os.path.basename(os.path.normpath(r.path))
    for row in rows:
      table.append(
        [g.label, name, int(row['step'])]
        + [
          f'{float(row[k]):.6g}' if isinstance(row.get(k), (int, float)) else ''
          for k in keys
        ]
      )
  rundir.write_csv(path, table)


def groups_of(rec: Records) -> list[Group]:
  """read.Groups of a records folder: a run per run of evals_runs.csv (or
  of train_runs.csv), its evaluations and train rows, its results the value
  of each metric at its last evaluation; the group's config (groups.json)
  with the run's seed. No samples: a records folder keeps none."""
  groups = []
  for g in rec.groups():
    curves, train = rec.curves.get(g, {}), rec.train.get(g, {})
    names = list(
      dict.fromkeys([r for m in curves.values() for r in m] + list(train))
    )
    runs = []
    for name in names:
      steps = {}
      for metric, by_run in curves.items():
        for step, value in by_run.get(name, {}).items():
          steps.setdefault(step, {'step': step})[metric] = value
      evals = [steps[s] for s in sorted(steps)]
      finals = {}
      for metric, by_run in curves.items():
        if by_run.get(name):
          finals[metric] = by_run[name][max(by_run[name])]
      seed = dict(
        p.split('=', 1) for p in seed_key(name).split(',') if '=' in p
      )
      seed = seed.get('seed', name)
      config = dict(rec.configs.get(g, {})) | {
        'seed': int(seed) if seed.isdigit() else seed
      }
      results = {'step': max(steps), 'metrics': finals} if steps else None
      runs.append(Run(name, config, train.get(name, []), evals, results, None))
    if runs:
      groups.append(Group(g, dict(rec.overrides.get(g, {})), runs))
  return groups


def results_rows(path: str) -> list[Row]:
  """results.csv (tables.write_results_csv) read back as stats.Rows."""

  def num(c):
    return None if c in ('', None, 'nan') else float(c)

  rows = []
  for row in _rows(path):
    names = [k[: -len('_mean')] for k in row if k.endswith('_mean')]
    rows.append(
      Row(
        group=row['group'],
        overrides={
          k: c
          for k, c in row.items()
          if k not in SUMMARY_COLUMNS
          and not k.endswith(('_mean', '_std'))
          and c != ''
        },
        n=int(row.get('n') or 0),
        n_eval=int(row.get('n_eval') or 0),
        step=row.get('step', ''),
        stats={
          k: (num(row[f'{k}_mean']), num(row.get(f'{k}_std'))) for k in names
        },
      )
    )
  return rows
