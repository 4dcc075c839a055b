"""Figures and tables from run and sweep directories.

  python -m gan_jax.report DIR [DIR ...] [--out OUT]

Each DIR is a run directory (config.json, metrics.jsonl, samples/,
results.json), a directory of model_<i>/ run directories (num_models=K) or a
sweep directory (sweep.json and one run directory per point). Nothing is
trained or evaluated: every number shown is read from those files.

Runs are grouped: a sweep's runs by their point's `group` (points that differ
only in seed), in sweep.json's order; the models of a num_models directory
form one group; any other run is a group of its own. Curves show a group's
mean over seeds at each logged step and, for several seeds, a band from their
minimum to their maximum (it stays positive on log axes, unlike mean ± std).
Tables give mean ± std over seeds, std the sample standard deviation
(ddof=1), left blank for a single seed, where it is undefined.

Written to OUT (default DIR/report):
  losses.png            d_loss and g_loss against step
  d_outputs.png         mean D(x) (d_real) and mean D(G(z)) (d_fake)
  grad_norms.png        G and D gradient norms, log scale
  eval_<metric>.png     each evaluation metric of metrics.jsonl
  samples.png           the newest sample grid of each group's first run
  classifier_accuracy.png  test accuracy of the classifiers trained on real,
                        real + generated and generated data (the cas and
                        augment metrics) against the override the groups
                        differ in (e.g. data.train_fraction)
  generator_losses.png  each config loss's G loss and its gradient with
                        respect to the logit, as functions of D(G(z))
  results.md, .csv      per group: overrides, seeds, results.json's final
                        metrics and the last train row's d_real and d_fake
"""

import argparse
import csv
import dataclasses
import json
import math
import os
import re
import statistics
import textwrap

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from gan_jax import losses, sweep

SAMPLE_FILE = re.compile(r'step_(\d+)\.png$')
MODEL_DIR = re.compile(r'model_(\d+)$')
FINAL_TRAIN = ('d_real', 'd_fake')  # last train row's values in the table


class ReportError(ValueError):
  """An input the report cannot read; the message says what was expected."""


@dataclasses.dataclass
class Run:
  """One run directory read back.

  train/evals: rows of metrics.jsonl sorted by step, the last one logged for
  each step (a resumed run appends); eval keys lose their 'eval/' prefix.
  """

  path: str
  config: dict
  train: list[dict]
  evals: list[dict]
  results: dict | None  # results.json
  sample: str | None  # the newest samples/step_XXXXXX.png
  skipped_lines: int = 0  # metrics.jsonl lines that were not JSON


@dataclasses.dataclass
class Group:
  """Runs that differ only in seed, and the overrides that define them."""

  label: str
  overrides: dict
  runs: list[Run]


# ---- Reading.


def is_run_dir(path: str) -> bool:
  return os.path.isfile(os.path.join(path, 'config.json'))


def _load_json(path: str):
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise ReportError(f'cannot read {path}: {e}') from e


def read_metrics(path: str) -> tuple[list[dict], list[dict], int]:
  """(train rows, eval rows, unreadable lines) of a metrics.jsonl.

  A row is an eval row when it has 'eval/...' keys. For each step and kind
  the last row wins; rows come back sorted by step.
  """
  train, evals, bad = {}, {}, 0
  if not os.path.exists(path):
    return [], [], 0
  with open(path) as f:
    for line in f:
      if not line.strip():
        continue
      try:
        row = json.loads(line)
        step = int(row['step'])
      except (ValueError, KeyError, TypeError):
        bad += 1  # e.g. a line cut short when a run was killed
        continue
      if any(k.startswith('eval/') for k in row):
        evals[step] = {'step': step} | {
          k[len('eval/') :]: v for k, v in row.items() if k.startswith('eval/')
        }
      else:
        train[step] = row | {'step': step}
  return (
    [train[s] for s in sorted(train)],
    [evals[s] for s in sorted(evals)],
    bad,
  )


def latest_sample(path: str) -> str | None:
  """The samples/step_XXXXXX.png of the largest step, or None."""
  folder = os.path.join(path, 'samples')
  if not os.path.isdir(folder):
    return None
  found = [
    (int(m.group(1)), n)
    for n in os.listdir(folder)
    if (m := SAMPLE_FILE.search(n))
  ]
  return os.path.join(folder, max(found)[1]) if found else None


def read_run(path: str) -> Run:
  """The run in `path`: config, metrics, results and newest sample."""
  if not is_run_dir(path):
    raise ReportError(f'{path} is not a run directory (no config.json)')
  results_path = os.path.join(path, 'results.json')
  train, evals, bad = read_metrics(os.path.join(path, 'metrics.jsonl'))
  return Run(
    path=path,
    config=_load_json(os.path.join(path, 'config.json')),
    train=train,
    evals=evals,
    results=_load_json(results_path) if os.path.exists(results_path) else None,
    sample=latest_sample(path),
    skipped_lines=bad,
  )


def model_dirs(path: str) -> list[str]:
  """The model_<i>/ run directories of a num_models run, by i."""
  if not os.path.isdir(path):
    return []
  found = [
    (int(m.group(1)), n)
    for n in os.listdir(path)
    if (m := MODEL_DIR.fullmatch(n))
  ]
  return [
    os.path.join(path, n)
    for _, n in sorted(found)
    if is_run_dir(os.path.join(path, n))
  ]


def read_runs(path: str) -> list[Run]:
  """The run in `path`, or the runs of its model_<i>/ directories."""
  if is_run_dir(path):
    return [read_run(path)]
  return [read_run(p) for p in model_dirs(path)]


def read_sweep(path: str) -> list[tuple[dict, Run | None]]:
  """(point, run) per run of each sweep.json point, in the file's order.

  A point whose workdir holds model_<i>/ directories gives one pair per
  model; a point with no run directory yet gives (point, None).
  """
  sweep = _load_json(os.path.join(path, 'sweep.json'))
  if not isinstance(sweep, dict) or not isinstance(sweep.get('points'), list):
    raise ReportError(f'{path}/sweep.json has no list of "points"')
  pairs = []
  for i, point in enumerate(sweep['points']):
    if not isinstance(point, dict) or 'name' not in point:
      raise ReportError(f'{path}/sweep.json: point {i} has no "name"')
    runs = read_runs(os.path.join(path, point.get('workdir', point['name'])))
    pairs += [(point, r) for r in runs] or [(point, None)]
  return pairs


# ---- Grouping.


def _flatten(config: dict, prefix: str = '') -> dict:
  """{'optim': {'lr': x}} -> {'optim.lr': x}."""
  out = {}
  for key, value in config.items():
    if isinstance(value, dict):
      out |= _flatten(value, f'{prefix}{key}.')
    else:
      out[prefix + key] = value
  return out


def _differing(dicts: list[dict]) -> list[str]:
  """Keys (first-seen order) whose values are not the same in all dicts."""
  keys = list(dict.fromkeys(k for d in dicts for k in d))
  return [
    k
    for k in keys
    if len({json.dumps(d.get(k), sort_keys=True) for d in dicts}) > 1
  ]


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
    varying = set(_differing(overrides))
    group.overrides = {
      k: v
      for k, v in overrides[0].items()
      if k not in varying and not sweep.is_seed(k)
    }
  return [g for g in by_label.values() if g.runs], list(dict.fromkeys(notes))


def read_groups(dirs: list[str]) -> tuple[list[Group], list[str]]:
  """Groups of every DIR in order, and notes; ReportError on a bad DIR.

  Groups of plain runs and num_models directories get as overrides the
  config fields (other than seed) in which they differ from each other, and
  those that sweeps given beside them override.
  """
  names = [os.path.basename(os.path.abspath(d)) for d in dirs]
  if len(set(names)) < len(names):
    names = [os.path.normpath(d) for d in dirs]
  groups, notes, plain = [], [], []
  for d, name in zip(dirs, names):
    if not os.path.isdir(d):
      raise ReportError(f'{d} is not a directory')
    if os.path.isfile(os.path.join(d, 'sweep.json')):
      prefix = f'{name}/' if len(dirs) > 1 else ''
      found, more = sweep_groups(read_sweep(d), prefix)
      if not found:
        raise ReportError(
          f'no point of the sweep in {d} has a run directory yet'
        )
      groups += found
      notes += more
    elif runs := read_runs(d):
      group = Group(name, {}, runs)
      groups.append(group)
      plain.append(group)
    else:
      raise ReportError(
        f'{d} is neither a run directory (config.json, metrics.jsonl, ...) '
        'nor a sweep directory (sweep.json), nor holds model_<i>/ run '
        'directories; pass the --workdir of launch.py.'
      )
  configs = [_flatten(g.runs[0].config) for g in plain]
  keys = [k for g in groups for k in g.overrides] + _differing(configs)
  for key in dict.fromkeys(k for k in keys if k != 'seed'):
    for group, config in zip(plain, configs):
      if key in config:  # absent: a config from before the field existed
        group.overrides.setdefault(key, config[key])
  for run in (r for g in groups for r in g.runs):
    if run.skipped_lines:
      notes.append(
        f'{run.path}/metrics.jsonl: {run.skipped_lines} unreadable '
        'line(s) skipped'
      )
  return groups, notes


# ---- Statistics.


def series(rows: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
  """(steps, values) of `key` over the rows that hold a finite value."""
  pairs = [
    (r['step'], r[key])
    for r in rows
    if isinstance(r.get(key), (int, float)) and math.isfinite(r[key])
  ]
  steps, values = zip(*pairs) if pairs else ((), ())
  return np.asarray(steps, np.int64), np.asarray(values, np.float64)


def aggregate(runs_series):
  """(steps, mean, min, max) over runs at every step any run logged.

  A step some runs have not reached (a shorter, unfinished run) is averaged
  over the runs that logged it.
  """
  runs_series = [(s, v) for s, v in runs_series if len(s)]
  if not runs_series:
    return (np.zeros(0, np.int64),) + (np.zeros(0),) * 3
  steps = np.unique(np.concatenate([s for s, _ in runs_series]))
  table = np.full((len(runs_series), len(steps)), np.nan)
  for i, (s, v) in enumerate(runs_series):
    table[i, np.searchsorted(steps, s)] = v
  return (
    steps,
    np.nanmean(table, 0),
    np.nanmin(table, 0),
    np.nanmax(table, 0),
  )


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
  """(mean, sample std with ddof=1); std None for one value, both for none."""
  if not values:
    return None, None
  mean = statistics.fmean(values)
  return mean, statistics.stdev(values) if len(values) > 1 else None


# ---- Tables.


@dataclasses.dataclass
class Row:
  """One table row: a group's overrides, seed counts, and (mean, std)s."""

  group: str
  overrides: dict
  n: int  # runs (seeds) read
  n_eval: int  # of which have a results.json
  step: str  # last train step; 'a-b' when the runs differ
  stats: dict[str, tuple[float | None, float | None]]


def final_metrics(groups: list[Group]) -> list[str]:
  """results.json metric names of all runs, in first-seen order."""
  return list(
    dict.fromkeys(
      name
      for g in groups
      for r in g.runs
      if r.results
      for name in r.results.get('metrics', {})
    )
  )


def group_table(groups: list[Group]) -> list[Row]:
  """A row per group: mean/std over its runs of each final metric.

  Final metrics are results.json's 'metrics' (runs without one are left
  out of those); d_real and d_fake are each run's last train row.
  """
  names = final_metrics(groups)
  rows = []
  for g in groups:
    results = [
      r.results['metrics']
      for r in g.runs
      if r.results and 'metrics' in r.results
    ]
    stats = {
      m: mean_std([float(x[m]) for x in results if x.get(m) is not None])
      for m in names
    }
    last = [r.train[-1] for r in g.runs if r.train]
    for key in FINAL_TRAIN:
      stats[key] = mean_std([float(t[key]) for t in last if key in t])
    steps = sorted({t['step'] for t in last})
    rows.append(
      Row(
        group=g.label,
        overrides=g.overrides,
        n=len(g.runs),
        n_eval=len(results),
        step='-'.join(str(s) for s in dict.fromkeys(steps[:1] + steps[-1:])),
        stats=stats,
      )
    )
  return rows


def _fmt(x: float) -> str:
  return f'{x:.4g}'


def _cell(mean: float | None, std: float | None) -> str:
  if mean is None:
    return ''
  return _fmt(mean) if std is None else f'{_fmt(mean)} ± {_fmt(std)}'


def _value(v) -> str:
  return (
    json.dumps(v) if isinstance(v, (list, dict, bool)) or v is None else str(v)
  )


def _head_cells(row: Row, keys: list[str]) -> list:
  """group, the override `keys` ('' where the row has none), n, n_eval, step."""
  values = [
    _value(row.overrides[k]) if k in row.overrides else '' for k in keys
  ]
  return [row.group, *values, row.n, row.n_eval, row.step]


def write_table(
  rows: list[Row], path_md: str, path_csv: str, notes=(), references=()
) -> None:
  """results.md (mean ± std cells; then paper_table) and results.csv (mean,
  std columns)."""
  keys = list(dict.fromkeys(k for r in rows for k in r.overrides))
  stats = list(dict.fromkeys(k for r in rows for k in r.stats))
  head = ['group', *keys, 'n', 'n_eval', 'step']
  lines = [
    '| ' + ' | '.join(head + stats) + ' |',
    '|' + ' --- |' * (len(head) + len(stats)),
  ]
  for r in rows:
    cells = [str(c) for c in _head_cells(r, keys)]
    cells += [_cell(*r.stats.get(k, (None, None))) for k in stats]
    lines.append('| ' + ' | '.join(c.replace('|', '\\|') for c in cells) + ' |')
  text = [
    '# Results',
    '',
    'Per group: mean ± std over seeds (std: sample standard deviation, '
    'ddof=1; none for one seed). n: runs read; n_eval: runs with a '
    "results.json, whose 'metrics' give the metric columns; d_real, d_fake: "
    "mean D(x) and D(G(z)) of each run's last train row; step: last train "
    'step.',
    '',
    *lines,
  ]
  text += ['', *(f'- {n}' for n in notes)] if notes else []
  text += paper_table(rows, references)
  with open(path_md, 'w') as f:
    f.write('\n'.join(text) + '\n')
  with open(path_csv, 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(head + [f'{k}_{s}' for k in stats for s in ('mean', 'std')])
    for r in rows:
      cells = _head_cells(r, keys)
      for k in stats:
        cells += [
          '' if x is None else repr(x) for x in r.stats.get(k, (None,) * 2)
        ]
      w.writerow(cells)


def read_references(dirs: list[str]) -> list[dict]:
  """The 'reference' of each sweep.json among `dirs` that has one."""
  refs = []
  for d in dirs:
    path = os.path.join(d, 'sweep.json')
    if os.path.isfile(path):
      ref = _load_json(path).get('reference')
      if isinstance(ref, dict) and isinstance(ref.get('rows'), list):
        refs.append(ref)
  return refs


def paper_table(rows: list[Row], references: list[dict]) -> list[str]:
  """Markdown lines: each paper number beside ours for the same setting.

  A reference row {'where': {field: value}, 'metrics': {name: value or
  [mean, s.e.]}} (an experiment file's get_reference, kept in sweep.json)
  matches the groups whose overrides hold every `where` item.
  """
  lines = []
  for ref in references:
    body = []
    for entry in ref['rows']:
      where = entry.get('where', {})
      for r in rows:
        if any(str(r.overrides.get(k)) != str(v) for k, v in where.items()):
          continue
        for metric, paper in entry.get('metrics', {}).items():
          if isinstance(paper, (list, tuple)):
            paper = f'{_fmt(paper[0])} ± {_fmt(paper[1])}'
          ours = _cell(*r.stats.get(metric, (None, None)))
          body.append(f'| {r.group} | {metric} | {ours} | {paper} |')
    if body:
      lines += [
        '',
        f'## Beside the paper: {ref.get("source", "")}',
        '',
        '| group | metric | ours (mean ± std) | paper |',
        '| --- | --- | --- | --- |',
        *body,
      ]
  return lines


def protocol_notes(groups: list[Group]) -> list[str]:
  """The evaluation protocols of the results, and which groups used each."""
  used = {}
  for g in groups:
    for r in g.runs:
      if r.results and r.results.get('protocol') is not None:
        key = json.dumps(r.results['protocol'], sort_keys=True)
        used.setdefault(key, []).append(g.label)
  notes = []
  for key, labels in used.items():
    where = '' if len(used) == 1 else f' ({", ".join(dict.fromkeys(labels))})'
    notes.append(f'protocol{where}: {key}')
  if len(used) > 1:
    notes.insert(
      0,
      'results measured under different protocols: compare '
      'only rows that share one',
    )
  return notes


# ---- Figures.


def _colors(n: int) -> list:
  cmap = matplotlib.colormaps['tab10' if n <= 10 else 'tab20']
  return [cmap(i % cmap.N) for i in range(n)]


def _save(fig: Figure, path: str, dpi: int = 100) -> str:
  FigureCanvasAgg(fig)
  fig.savefig(path, dpi=dpi, bbox_inches='tight', pad_inches=0.05)
  return path


def _legend_label(g: Group) -> str:
  return g.label if len(g.runs) == 1 else f'{g.label} (n={len(g.runs)})'


def plot_curves(
  groups: list[Group],
  panels: list[tuple[str, str, str]],
  path: str,
  *,
  log: bool = False,
  ylim=None,
  markers: bool = False,
) -> str | None:
  """One panel per (rows, key, title), rows 'train' or 'evals': a line per
  group (mean over seeds) with a min-max band. None when no run has a key.
  """
  data = [
    [aggregate(series(getattr(r, rows), key) for r in g.runs) for g in groups]
    for rows, key, _ in panels
  ]
  if not any(len(a[0]) for panel in data for a in panel):
    return None
  fig = Figure(figsize=(5 * len(panels), 4), layout='constrained')
  colors = _colors(len(groups))
  for i, ((_, key, title), panel) in enumerate(zip(panels, data)):
    ax = fig.add_subplot(1, len(panels), i + 1)
    for g, color, (steps, mean, lo, hi) in zip(groups, colors, panel):
      if not len(steps):
        continue
      ax.plot(
        steps,
        mean,
        color=color,
        label=_legend_label(g),
        marker='o' if markers else None,
        markersize=3,
      )
      if len(g.runs) > 1:
        ax.fill_between(steps, lo, hi, color=color, alpha=0.2, lw=0)
    ax.set(title=title, xlabel='step', ylabel=key)
    if log:
      ax.set_yscale('log')
    if ylim:
      ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
  several = any(len(g.runs) > 1 for g in groups)
  handles, labels = fig.axes[0].get_legend_handles_labels()
  for ax in fig.axes[1:]:  # groups missing from the first panel
    for h, lab in zip(*ax.get_legend_handles_labels()):
      if lab not in labels:
        handles.append(h)
        labels.append(lab)
  fig.legend(
    handles,
    labels,
    loc='outside lower center',
    ncol=min(len(labels), 4),
    fontsize=8,
    title_fontsize=8,
    title='lines: mean over seeds; bands: min to max' if several else None,
  )
  return _save(fig, path)


def plot_losses(groups, path):
  """D and G losses against step."""
  return plot_curves(
    groups,
    [('train', 'd_loss', 'D loss'), ('train', 'g_loss', 'G loss')],
    path,
  )


def plot_d_outputs(groups, path):
  """Mean D(x) and mean D(G(z)) (sigmoid of the logit) against step."""
  return plot_curves(
    groups,
    [('train', 'd_real', 'mean D(x)'), ('train', 'd_fake', 'mean D(G(z))')],
    path,
    ylim=(-0.02, 1.02),
  )


def plot_grad_norms(groups, path):
  """G and D parameter-gradient norms against step, log scale."""
  return plot_curves(
    groups,
    [
      ('train', 'g_grad_norm', 'G gradient norm'),
      ('train', 'd_grad_norm', 'D gradient norm'),
    ],
    path,
    log=True,
  )


def eval_metrics(groups: list[Group]) -> list[str]:
  """Metric names of the eval rows (not eval/seconds), first-seen order."""
  return list(
    dict.fromkeys(
      k
      for g in groups
      for r in g.runs
      for row in r.evals
      for k in row
      if k not in ('step', 'seconds')
    )
  )


def plot_eval(groups, metric, path):
  """An evaluation metric of metrics.jsonl (eval/<metric>) against step."""
  return plot_curves(groups, [('evals', metric, metric)], path, markers=True)


def _final(run: Run, metric: str) -> float | None:
  """The run's final `metric` (results.json) when it is a finite number."""
  v = (run.results or {}).get('metrics', {}).get(metric)
  ok = isinstance(v, (int, float)) and math.isfinite(v)
  return float(v) if ok else None


def _finals(g: Group, metric: str) -> list[float]:
  """Finite final values of `metric` over the group's runs."""
  return [v for r in g.runs if (v := _final(r, metric)) is not None]


def plot_final(groups: list[Group], metric: str, path: str) -> str | None:
  """Final `metric` (results.json) of every run: one column per value of
  the runs' `loss` (all their other settings and seeds pooled, the spread
  over a grid as in Lucic et al. 2018, Fig. 4), else per group; a dot per
  run, a bar at the median."""
  by = {}
  for g in groups:
    for r in g.runs:
      value = _final(r, metric)
      if value is not None:
        by.setdefault(str(r.config.get('loss', g.label)), []).append(value)
  if not by:
    return None
  fig = Figure(figsize=(max(4.0, 1.2 * len(by)), 3.2), layout='constrained')
  ax = fig.add_subplot()
  for i, values in enumerate(by.values()):
    x = i + np.linspace(-0.15, 0.15, len(values))
    ax.plot(x, values, 'o', alpha=0.7, color=f'C{i % 10}')
    ax.plot([i - 0.3, i + 0.3], [statistics.median(values)] * 2, 'k-')
  ax.set_xticks(range(len(by)), list(by), rotation=20, ha='right')
  ax.set(ylabel=metric, title=f'final {metric}: a dot per run, bar: median')
  ax.grid(alpha=0.3, axis='y')
  return _save(fig, path)


# results.json metric -> what the classifier behind it was trained on.
ACCURACIES = (
  ('real_accuracy', 'real'),
  ('augmented_accuracy', 'real + generated'),
  ('cas', 'generated only (CAS)'),
)


def plot_accuracies(groups: list[Group], path: str) -> str | None:
  """Final test accuracies of the cas/augment classifiers: a line per
  training set over the one numeric override the groups differ in (log
  axis when it spans a decade), else over the groups; mean ± std over
  seeds as error bars, a dot per run. None without such metrics."""
  present = [
    (m, lab) for m, lab in ACCURACIES if any(_finals(g, m) for g in groups)
  ]
  if not present:
    return None
  keys = _differing([g.overrides for g in groups])
  numeric = len(keys) == 1 and all(
    isinstance(g.overrides.get(keys[0]), (int, float))
    and not isinstance(g.overrides.get(keys[0]), bool)
    for g in groups
  )
  xs = [g.overrides[keys[0]] for g in groups] if numeric else range(len(groups))
  fig = Figure(figsize=(5.5, 3.8), layout='constrained')
  ax = fig.add_subplot()
  for i, (metric, label) in enumerate(present):
    points = [(x, _finals(g, metric)) for x, g in zip(xs, groups)]
    points = [(x, v) for x, v in points if v]
    for x, values in points:
      ax.plot([x] * len(values), values, '.', color=f'C{i}', alpha=0.4)
    stats = [mean_std(v) for _, v in points]
    ax.errorbar(
      [x for x, _ in points],
      [m for m, _ in stats],
      yerr=[sd or 0.0 for _, sd in stats],
      color=f'C{i}',
      marker='o',
      capsize=3,
      label=label,
    )
  if numeric:
    ax.set_xlabel(keys[0])
    if max(xs) >= 10 * min(xs) > 0:
      ax.set_xscale('log')
  else:
    ax.set_xticks(list(xs), [g.label for g in groups], rotation=20, ha='right')
  ax.set(ylabel='test accuracy', title='classifier trained on:')
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  return _save(fig, path)


def plot_samples(groups: list[Group], path: str, cols: int = 4) -> str | None:
  """The newest sample grid of each group's first run that has one."""
  tiles = []
  for g in groups:
    run = next((r for r in g.runs if r.sample), None)
    if run:
      step = int(SAMPLE_FILE.search(run.sample).group(1))
      which = f'{os.path.basename(run.path)}, ' if len(g.runs) > 1 else ''
      title = textwrap.fill(f'{which}step {step}', 48)  # long point names
      tiles.append((f'{g.label}\n{title}', run.sample))
  if not tiles:
    return None
  cols = min(cols, len(tiles))
  rows = -(-len(tiles) // cols)
  fig = Figure(figsize=(3.2 * cols, 3.5 * rows), layout='compressed')
  for i, (title, file) in enumerate(tiles):
    ax = fig.add_subplot(rows, cols, i + 1)
    with Image.open(file) as im:
      ax.imshow(np.asarray(im.convert('RGB')), interpolation='nearest')
    ax.set_title(title, fontsize=8)
    ax.axis('off')
  return _save(fig, path, dpi=150)  # tiles about 480 px wide


def generator_loss_curves(
  name: str, d_fake: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """(G loss, d G loss / d logit) of one example at each D(G(z)) in d_fake.

  The logit is log(D / (1 - D)); losses of raw critic values (wasserstein,
  hinge, least_squares) take it as that value. A loss that needs real
  logits (relativistic_average) gets a real logit of 0, D(x) = 1/2.
  """
  loss = losses.get(name)
  real = jnp.zeros((1,))

  def per_example(logit):
    return loss.g_loss(jnp.reshape(logit, (1,)), real)

  logits = jnp.log(d_fake) - jnp.log1p(-d_fake)
  values = jax.vmap(per_example)(logits)
  grads = jax.vmap(jax.grad(per_example))(logits)
  return np.asarray(values, np.float64), np.asarray(grads, np.float64)


def plot_generator_losses(names: list[str], path: str) -> str | None:
  """The saturation figure: G loss and its logit gradient against D(G(z)).

  Names with the same G loss share a curve. Minimax's gradient is -D(G(z)),
  vanishing as D(G(z)) -> 0; non-saturating's is D(G(z)) - 1.
  """
  by_fn = {}
  for name in names:
    if name in losses.LOSSES:
      loss = losses.LOSSES[name]
      by_fn.setdefault((loss.g_loss, loss.g_needs_real), []).append(name)
  if not by_fn:
    return None
  d = np.linspace(1e-3, 1 - 1e-3, 999)
  fig = Figure(figsize=(10, 4), layout='constrained')
  ax_loss, ax_grad = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
  for (_, needs_real), group, color in zip(
    by_fn, by_fn.values(), _colors(len(by_fn))
  ):
    values, grads = generator_loss_curves(group[0], d)
    label = ', '.join(group) + (' (real logit 0)' if needs_real else '')
    ax_loss.plot(d, values, color=color, label=label)
    ax_grad.plot(d, grads, color=color, label=label)
  ax_loss.set(title='G loss of one example', ylabel='G loss')
  ax_grad.set(title='gradient w.r.t. the logit', ylabel='d G loss / d logit')
  for ax in (ax_loss, ax_grad):
    ax.axhline(0, color='k', lw=0.5)
    ax.set(xlabel='D(G(z)) = sigmoid(logit)', xlim=(0, 1))
    ax.grid(alpha=0.3)
  ax_grad.legend(fontsize=8)
  return _save(fig, path)


# ---- Command.


def _file_name(name: str) -> str:
  return re.sub(r'[^\w.-]', '_', name)


def short_labels(groups: list[Group]) -> list[Group]:
  """Groups labelled for figures by the overrides whose values differ
  between groups, as 'leaf=value' (`data.name=ring` -> `name=ring`)."""
  keys = _differing([g.overrides for g in groups])
  if not keys:
    return groups
  return [
    dataclasses.replace(
      g,
      label=', '.join(
        f'{k.rsplit(".", 1)[-1]}={g.overrides[k]}'
        for k in keys
        if k in g.overrides
      )
      or g.label,
    )
    for g in groups
  ]


def write_report(
  groups: list[Group], out: str, notes=(), references=()
) -> list[str]:
  """Every figure and table for `groups` into `out`; the paths written."""
  os.makedirs(out, exist_ok=True)
  table_groups, groups = groups, short_labels(groups)
  paths = [
    plot_losses(groups, os.path.join(out, 'losses.png')),
    plot_d_outputs(groups, os.path.join(out, 'd_outputs.png')),
    plot_grad_norms(groups, os.path.join(out, 'grad_norms.png')),
  ]
  paths += [
    plot_eval(groups, m, os.path.join(out, f'eval_{_file_name(m)}.png'))
    for m in eval_metrics(groups)
  ]
  paths += [
    plot_final(groups, m, os.path.join(out, f'final_{_file_name(m)}.png'))
    for m in final_metrics(groups)
  ]
  paths.append(plot_samples(groups, os.path.join(out, 'samples.png')))
  paths.append(
    plot_accuracies(groups, os.path.join(out, 'classifier_accuracy.png'))
  )
  loss_names = list(
    dict.fromkeys(
      r.config.get('loss')
      for g in groups
      for r in g.runs
      if isinstance(r.config.get('loss'), str)
    )
  )
  paths.append(
    plot_generator_losses(loss_names, os.path.join(out, 'generator_losses.png'))
  )
  tables = [os.path.join(out, 'results.md'), os.path.join(out, 'results.csv')]
  write_table(
    group_table(table_groups),
    *tables,
    [*notes, *protocol_notes(table_groups)],
    references,
  )
  return [p for p in paths if p] + tables


def main(argv: list[str] | None = None) -> list[str]:
  """The command line; prints and returns the paths written."""
  parser = argparse.ArgumentParser(
    prog='python -m gan_jax.report',
    description='Figures and tables from run and sweep directories.',
  )
  parser.add_argument(
    'dirs', nargs='+', metavar='DIR', help='run or sweep directory'
  )
  parser.add_argument(
    '--out', help='output folder (default: DIR/report for one DIR)'
  )
  args = parser.parse_args(argv)
  if args.out is None and len(args.dirs) > 1:
    parser.error('several DIRs: pass --out')
  out = args.out or os.path.join(args.dirs[0], 'report')
  try:
    groups, notes = read_groups(args.dirs)
  except ReportError as e:
    raise SystemExit(f'error: {e}') from None
  for note in notes:
    print(f'note: {note}')
  paths = write_report(groups, out, notes, read_references(args.dirs))
  for p in paths:
    print(p)
  return paths


if __name__ == '__main__':
  main()
