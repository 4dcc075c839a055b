"""The tables (the results table of report.md, results.csv, evals.csv,
trend_<metric>.md) and the results' notes."""

import json
import math
import os

from gan_jax import rundir
from gan_jax import metrics
from gan_jax.report import records, stats, verdict
from gan_jax.report.read import Group
from gan_jax.report.stats import Row, Trend


def _fmt(x: float) -> str:
  return f'{x:.4g}'


def _cell(mean: float | None, std: float | None) -> str:
  """'mean ± std', 'mean' without a std, '' without a mean."""
  if mean is None:
    return ''
  return _fmt(mean) if std is None else f'{_fmt(mean)} ± {_fmt(std)}'


def value_text(v) -> str:
  """An override's value as a cell: JSON for lists, dicts, bools and None."""
  return (
    json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)
  )


def md_table(head: list[str], rows: list[list[str]]) -> list[str]:
  """Markdown lines of a table: the head, its rule, a line per row of cells
  ('|' in a cell escaped)."""
  lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
  for cells in rows:
    lines.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |')
  return lines


def _head_cells(row: Row, keys: list[str]) -> list:
  """group, the override `keys` ('' where the row has none), n, n_eval, step."""
  values = [
    value_text(row.overrides[k]) if k in row.overrides else '' for k in keys
  ]
  return [row.group, *values, row.n, row.n_eval, row.step]


# The units of the table's columns that no metric states (metrics.unit).
UNITS = {
  'd_real': 'mean D(x), 0 to 1',
  'd_fake': 'mean D(G(z)), 0 to 1',
  'd_train': 'mean D(x), 0 to 1',
  'd_heldout': 'mean D(x), 0 to 1',
  'd_gap': 'd_train − d_heldout',
  'rt_train': 'E[sign D(x)], −1 to 1',
  'rt_heldout': 'E[sign D(x)], −1 to 1',
  stats.RATE: 'updates/s of each model',
  stats.PROGRAM_RATE: 'model updates/s of its program',
}
RESULTS_NOTE = (
  'Per group: mean ± std over seeds (std: sample standard deviation, '
  'ddof=1; none for one seed); each column says its unit. n: runs read; '
  f"n_eval: runs with a {rundir.RESULTS}, whose 'metrics' give the metric "
  "columns; d_real, d_fake: each run's last train row; steps_per_sec: the "
  "median of each run's logged rates (the median leaves out the few "
  'intervals that held an evaluation or a checkpoint), the updates each '
  'model makes a second; program_rate: that times the models one program '
  'trains at once (a vmapped sweep), the rate to compare between vmapped '
  "and solo groups; step: last train step. 'real data': the same metrics "
  "of real examples scored as generated ones under the runs' protocol, "
  "the scale of each column. A metric's own spread (kid_std, is_std, "
  'parzen_se) is in results.csv, not a column here.'
)


def header(key: str) -> str:
  """A column head: the key and its unit ('fd (squared feature units)')."""
  u = UNITS.get(key) or metrics.unit(key)
  return f'{key} ({u})' if u else key


def results_table(rows: list[Row]) -> list[str]:
  """Markdown lines of the results table: mean ± std cells, each column
  head with its unit; a metric's own spread left to results.csv, and a
  column no row has a value in left out."""
  keys = list(dict.fromkeys(k for r in rows for k in r.overrides))
  errors = set(metrics.error_keys().values())
  names = [
    k
    for k in dict.fromkeys(k for r in rows for k in r.stats)
    if k not in errors
    and any(r.stats.get(k, (None,))[0] is not None for r in rows)
  ]
  return md_table(
    ['group', *keys, 'n', 'n_eval', 'step', *(header(k) for k in names)],
    [
      [str(c) for c in _head_cells(r, keys)]
      + [_cell(*r.stats.get(k, (None, None))) for k in names]
      for r in rows
    ],
  )


def write_results_csv(rows: list[Row], path_csv: str) -> None:
  """results.csv: the overrides, n, n_eval, step and each statistic's mean
  and std columns (every one, a metric's own spread included)."""
  keys = list(dict.fromkeys(k for r in rows for k in r.overrides))
  names = list(dict.fromkeys(k for r in rows for k in r.stats))
  table = [
    ['group', *keys, 'n', 'n_eval', 'step']
    + [f'{k}_{s}' for k in names for s in ('mean', 'std')]
  ]
  for r in rows:
    cells = _head_cells(r, keys)
    for k in names:
      cells += [
        '' if x is None else repr(x) for x in r.stats.get(k, (None,) * 2)
      ]
    table.append(cells)
  rundir.write_csv(path_csv, table)


def best_of_table(groups: list[Group]) -> list[str]:
  """Markdown lines: where runs of one loss span several groups (a search
  over other settings and seeds, as Lucic et al. 2018), per loss the
  expected best final value of k random trials among its runs (Dodge et
  al. 2019, verdict.expected_best) of each metric that has a direction."""
  lines = []
  for m in stats.final_metrics(groups):
    direction = metrics.direction(m)
    if direction is None:
      continue
    by = stats.final_columns(groups, m)
    if len(by) == len(groups):
      continue  # one group a column: no search to summarise
    values = {
      c: [v for vs in col.values() for v in vs] for c, col in by.items()
    }
    most = max(len(v) for v in values.values())
    ks = [k for k in (1, 2, 4, 8, 16, 32, 64) if k <= most]
    body = [
      [c, str(len(v))]
      + [
        _fmt(verdict.expected_best(v, k, direction == 'lower'))
        if k <= len(v)
        else ''
        for k in ks
      ]
      for c, v in values.items()
    ]
    best = 'lowest' if direction == 'lower' else 'highest'
    lines += [
      '',
      f'### {m}: expected {best} of k random trials',
      '',
      *md_table(['column', 'runs', *(f'k = {k}' for k in ks)], body),
    ]
  return lines


def protocol_notes(groups: list[Group]) -> list[str]:
  """Notes naming the evaluation protocols of the results, and which groups
  used each."""
  used, generators = {}, {}
  for g in groups:
    for r in g.runs:
      if r.results and r.results.get('protocol') is not None:
        key = stats.measurement(r.results['protocol'])
        used.setdefault(key, []).append(g.label)
        generator = r.results['protocol'].get('generator', '')
        generators.setdefault(generator, []).append(g.label)
  notes = []
  for key, labels in used.items():
    where = '' if len(used) == 1 else f' ({", ".join(dict.fromkeys(labels))})'
    notes.append(f'protocol{where}: {key}')
  if len(generators) > 1:
    notes += [
      f'{name or "generator not recorded"}: {", ".join(dict.fromkeys(labels))}'
      for name, labels in generators.items()
    ]
  elif generators:
    notes.append(f'generator: {next(iter(generators)) or "not recorded"}')
  if len(used) > 1:
    notes.insert(
      0,
      'results measured under different protocols: compare '
      'only rows that share one',
    )
  return notes


def _step(s: float, last: int) -> str:
  """A step where a trend line meets its target: 'never' for inf, '?' for
  NaN (a 2-point fit has no error), 'passed at' one at or before the last
  evaluation `last` (the line is past the target there, whatever the data)."""
  if math.isinf(s):
    return 'never'
  if math.isnan(s):
    return '?'
  return f'passed at {s:,.0f}' if s <= last else f'{s:,.0f}'


def write_trend(
  trends: list[Trend], metric: str, target: float | None, path_md: str
) -> None:
  """Writes trend_<metric>.md: per group the line of `metric` against
  log2(step) and the saturating fit (stats.log_trend) and, with a target,
  where each meets it."""
  head = [
    'group',
    'steps fitted',
    'n',
    f'last {metric}',
    'per doubling',
    'se over runs',
  ]
  if target is not None:
    head.append(f'reaches {_fmt(target)} at step (slope ± 2 se)')
  body = []
  for t in trends:
    cells = [
      t.group,
      f'{t.first}-{t.last}',
      str(t.n),
      _fmt(t.final),
      _cell(t.slope, None if math.isnan(t.se) else t.se),
      '' if math.isnan(t.se_runs) else _fmt(t.se_runs),
    ]
    if t.reach is not None:
      at, soon, late = (_step(s, t.last) for s in t.reach)
      cells.append(f'{at} ({soon} to {late})')
    body.append(cells)
  sat_head = ['group', 'power', 'limit (se over runs)']
  if target is not None:
    sat_head.append(f'reaches {_fmt(target)} at step')
  sat_body = []
  for t in trends:
    if math.isnan(t.power):
      continue
    limit = 'no bend' if math.isinf(t.limit) else _fmt(t.limit)
    if not math.isnan(t.limit_se_runs):
      limit += f' ({_fmt(t.limit_se_runs)})'
    cells = [t.group, f'{t.power:.3g}', limit]
    if t.limit_reach is not None:
      cells.append(
        '' if math.isnan(t.limit_reach) else _step(t.limit_reach, t.last)
      )
    sat_body.append(cells)
  text = [
    f'# Trend of {metric}',
    '',
    (
      f'Per group: a least-squares line through the mean over seeds of '
      f'{metric} at each evaluation step against log2(step); per doubling: '
      'its slope ± least-squares standard error, a lower bound since the '
      'residuals of consecutive evaluations are correlated; se over runs: '
      "the standard error of the mean of the runs' own slopes, the runs "
      'being independent. Where the line meets a target (slope ± 2 se, se '
      'the larger of the two) is an extrapolation, not a measurement.'
    ),
    '',
    *md_table(head, body),
    '',
    '## Saturating fit',
    '',
    (
      f'Per group (4 evaluation steps or more): {metric} ~ limit - b '
      '(step / first step)^-power by least squares on the same means, the '
      'power on a grid 1.2 % apart from 0.01 to 4; "no bend" where the '
      'smallest power fits best (the curve is still a line in log2(step)); '
      "se over runs: the standard error of the mean of the runs' own "
      'limits. A limit below the target is a plateau the fit predicts; '
      'both are extrapolations.'
    ),
    '',
    *md_table(sat_head, sat_body),
  ]
  rundir.write_text(path_md, '\n'.join(text) + '\n')


def write_evals(
  groups: list[Group], metrics: list[str], path_csv: str, path_runs: str
) -> None:
  """Writes evals.csv, the numbers of the eval_<metric> figures: a row per
  group, metric and evaluation step with the mean, min and max over the
  runs that logged it (stats.aggregate); and path_runs (unless None),
  every run's own curves (group, run directory's name, metric, step, value), which outlive
  the run directories."""
  rows, table = [], [['group', 'metric', 'step', 'mean', 'min', 'max']]
  for g in groups:
    for m in metrics:
      curves = [stats.series(r.evals, m) for r in g.runs]
      for step, *values in zip(*stats.aggregate(curves)):
        table.append([g.label, m, int(step), *(repr(float(v)) for v in values)])
      for r, (steps, values) in zip(g.runs, curves):
        name = os.path.basename(os.path.normpath(r.path))
        rows += [(g.label, name, m, s, v) for s, v in zip(steps, values)]
  rundir.write_csv(path_csv, table)
  if path_runs:
    records.write_curves(path_runs, rows)
