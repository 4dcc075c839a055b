"""Statistics over a group's runs: curves over steps and final numbers."""

import dataclasses
import json
import math
import statistics

import numpy as np

from gan_jax.report.read import Group, Run

FINAL_TRAIN = ('d_real', 'd_fake')  # last train row's values in the table
RATE = 'steps_per_sec'  # its median over each run's train rows
# RATE times the models of the run's program (train rows' 'program_models';
# runs logged before it: 1).
PROGRAM_RATE = 'program_rate'


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


def _median_rate(r: Run) -> float | None:
  """The run's median logged steps/s; None when it logged none."""
  v = series(r.train, RATE)[1]
  return float(np.median(v)) if len(v) else None


def run_rates(g: Group) -> list[float]:
  """Each run's median logged steps/s (runs that logged none left out)."""
  return [x for r in g.runs if (x := _median_rate(r)) is not None]


def program_rates(g: Group) -> list[float]:
  """run_rates times the models each run's program trained at once (its
  last train row's 'program_models', else 1)."""
  out = []
  for r in g.runs:
    if (x := _median_rate(r)) is not None:
      models = next(
        (
          row['program_models']
          for row in reversed(r.train)
          if 'program_models' in row
        ),
        1,
      )
      out.append(x * models)
  return out


def minutes_per_step(g: Group) -> float:
  """1 / (60 x the group's steps/s): the mean over runs of each run's median
  logged rate (NaN when no run logged one)."""
  rates = run_rates(g)
  return 1 / (60 * statistics.fmean(rates)) if rates else math.nan


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
  """(mean, sample std with ddof=1); std None for one value, both for none."""
  if not values:
    return None, None
  mean = statistics.fmean(values)
  return mean, statistics.stdev(values) if len(values) > 1 else None


@dataclasses.dataclass
class Row:
  """One table row: a group's overrides, seed counts, and (mean, std)s."""

  group: str
  overrides: dict
  n: int  # runs (seeds) read
  n_eval: int  # of which have results
  step: str  # last train step; 'a-b' when the runs differ
  stats: dict[str, tuple[float | None, float | None]]


def final_metrics(groups: list[Group]) -> list[str]:
  """Names of the final metrics (results' 'metrics') of all runs, in
  first-seen order."""
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
  """A Row per group: mean/std over its runs of each final metric.

  Final metrics are the results' 'metrics' (runs without results are left
  out of those); d_real and d_fake are each run's last train row,
  steps_per_sec the median of each run's logged rates (what a budget buys).
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
    stats[RATE] = mean_std(run_rates(g))
    stats[PROGRAM_RATE] = mean_std(program_rates(g))
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


def final_value(run: Run, metric: str) -> float | None:
  """The run's final `metric` (its results) when it is a finite number."""
  v = (run.results or {}).get('metrics', {}).get(metric)
  ok = isinstance(v, (int, float)) and math.isfinite(v)
  return float(v) if ok else None


def final_columns(groups: list[Group], metric: str) -> dict:
  """{column: {seed: [final values]}}, a column per `loss` value of the
  runs where the groups span several losses and other settings too (a
  search over each loss's settings, as Lucic et al. 2018), else per group
  (plot_finals' columns)."""
  losses = {str(r.config.get('loss')) for g in groups for r in g.runs}
  by_loss = 1 < len(losses) < len(groups)
  by = {}
  for g in groups:
    for r in g.runs:
      value = final_value(r, metric)
      if value is not None:
        name = str(r.config.get('loss')) if by_loss else g.label
        col = by.setdefault(name, {})
        col.setdefault(r.config.get('seed'), []).append(value)
  return by


def seed_linked(by: dict) -> bool:
  """Whether final_columns' columns can be joined by seed: several
  columns, each holding every seed at most once."""
  return len(by) > 1 and all(
    None not in col and all(len(v) == 1 for v in col.values())
    for col in by.values()
  )


def measurement(protocol: dict | None) -> str:
  """An evaluation protocol as a key, without 'generator': which weights a
  run scored (EMA or trained) is the run's, not the measurement's."""
  protocol = {k: v for k, v in (protocol or {}).items() if k != 'generator'}
  return json.dumps(protocol, sort_keys=True)


def real_data_rows(groups: list[Group]) -> list[Row]:
  """A Row per evaluation protocol of the runs' results: the metrics of
  real data under it (results' 'real_data'), labelled 'real data' (with
  the groups that used it when there are several protocols)."""
  by_protocol = {}
  for g in groups:
    for r in g.runs:
      if r.results and r.results.get('real_data'):
        key = measurement(r.results.get('protocol'))
        entry = by_protocol.setdefault(key, [r.results['real_data'], []])
        entry[1].append(g.label)
  rows = []
  for real, labels in by_protocol.values():
    label = 'real data'
    if len(by_protocol) > 1:
      label += f' ({", ".join(dict.fromkeys(labels))})'
    rows.append(
      Row(
        group=label,
        overrides={},
        n=0,
        n_eval=0,
        step='',
        stats={m: (float(v), None) for m, v in real.items()},
      )
    )
  return rows


@dataclasses.dataclass
class Trend:
  """Two fits to a group's mean of one evaluation metric against step: a
  least-squares line in log2(step), y ~ a + slope log2(step), and a
  saturating power law, y ~ limit - b (step / first)^-power."""

  group: str
  first: int  # first and last step fitted
  last: int
  n: int  # evaluation steps fitted
  final: float  # the group mean at the last step
  slope: float  # gain per doubling of the step
  se: float  # the slope's least-squares standard error (NaN for 2 points)
  # The standard error of the mean of the runs' own slopes over the same
  # steps, std / sqrt(runs) (NaN under 2 runs).
  se_runs: float
  # Steps where the line meets the target: (at slope, at the slope 2 se
  # steeper, at the slope 2 se shallower), se the larger of se and se_runs;
  # a step at or before `last` where the line passed it, inf for a flat line.
  reach: tuple[float, float, float] | None
  # The saturating fit y ~ limit - b (step / first)^-power over the same
  # mean (_saturation); NaN power and limit under 4 steps, limit inf where
  # the steps show no bend (power at POWERS[0]: a line in log2(step)).
  power: float
  limit: float
  limit_se_runs: float  # std / sqrt(runs) of the runs' own limits
  limit_reach: float | None  # step where the fit meets the target


# The exponents _saturation tries: 1.2 % apart, from a curve with hardly a
# bend (0.01) to one flat after its first doubling (4).
POWERS = np.geomspace(0.01, 4.0, 512)


def _meets(xm, ym, slope, target):
  """The step where the line through (xm, ym) with `slope` in log2 steps
  meets `target` (before the last evaluation where the line has passed it);
  inf for a flat line."""
  if slope == 0:
    return math.inf
  return float(2 ** (xm + (target - ym) / slope))


def line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
  """(slope, se) of the least-squares line y ~ a + slope x: slope =
  sum (x - x̄)(y - ȳ) / sum (x - x̄)², se = sqrt(sum r² / ((n - 2)
  sum (x - x̄)²)) from the residuals r (NaN for 2 points)."""
  xm, ym = x.mean(), y.mean()
  sxx = float(((x - xm) ** 2).sum())
  slope = float(((x - xm) * (y - ym)).sum() / sxx)
  resid = y - ym - slope * (x - xm)
  n = len(x)
  se = (
    math.sqrt(float((resid**2).sum()) / ((n - 2) * sxx)) if n > 2 else math.nan
  )
  return slope, se


def _saturation(u: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
  """(limit, b, power) of the least-squares fit y ~ limit - b u^-power, u >= 1
  the step over the first fitted one: for each power on POWERS the fit is
  linear in (limit, b); the power with the least squared residual wins
  (profile least squares). limit is inf where that power is POWERS[0] (no
  bend: the fit would rather be a line in log u, the limit of c -> 0)."""
  best = (math.inf, 0.0, 0.0, 0.0)
  for c in POWERS:
    a = np.stack([np.ones_like(u), -(u**-c)], 1)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    rss = float(((a @ coef - y) ** 2).sum())
    if rss < best[0]:
      best = (rss, float(coef[0]), float(coef[1]), float(c))
  _, limit, b, c = best
  return (math.inf if c == POWERS[0] else limit), b, c


def _saturation_reach(limit: float, b: float, c: float, target: float) -> float:
  """u where limit - b u^-c = target: ((limit - target) / b)^(-1/c); inf
  where the fit never gets there (target at or past its limit), NaN with
  no limit measured."""
  if not math.isfinite(limit):
    return math.nan
  r = (limit - target) / b if b else 0.0
  return r ** (-1 / c) if r > 0 else math.inf


def log_trend(
  g: Group, metric: str, first_step: int = 1, target: float | None = None
) -> Trend | None:
  """The Trend of `metric` (an eval row key) over the evaluations from
  `first_step` on, of the mean over the group's runs at each step
  (aggregate); None with fewer than 2 such steps.

  Two errors of the slope: se, ordinary least squares, which takes the
  residuals as independent (consecutive evaluations of one run are not, so
  it is a lower bound); and se_runs, from the spread of each run's own
  slope over the same steps, the runs being independent (few runs make it
  a rough one). The saturating fit's limit has the second kind only.
  """
  curves = [series(r.evals, metric) for r in g.runs]
  steps, mean, _, _ = aggregate(curves)
  first_step = max(first_step, 1)
  keep = steps >= first_step
  x, y = np.log2(steps[keep].astype(np.float64)), mean[keep]
  if len(x) < 2:
    return None
  slope, se = line(x, y)
  u0 = float(steps[keep][0])
  slopes, limits = [], []  # each run's own, over the same steps
  for s, v in curves:
    s, v = s[s >= first_step], v[s >= first_step]
    if len(s) >= 2:
      slopes.append(line(np.log2(s.astype(np.float64)), v)[0])
    if len(s) >= 4:
      limits.append(_saturation(s / u0, v)[0])
  se_runs = (
    statistics.stdev(slopes) / math.sqrt(len(slopes))
    if len(slopes) > 1
    else math.nan
  )
  power = limit = limit_se_runs = math.nan
  limit_reach = None
  if len(x) >= 4:
    limit, b, power = _saturation(steps[keep] / u0, y)
    if len(limits) > 1 and all(map(math.isfinite, limits)):
      limit_se_runs = statistics.stdev(limits) / math.sqrt(len(limits))
    if target is not None:
      limit_reach = u0 * _saturation_reach(limit, b, power, target)
  reach = None
  if target is not None:
    bound = max((e for e in (se, se_runs) if not math.isnan(e)), default=0.0)
    steeper = 2 * bound * math.copysign(1, slope)
    xm, ym = x.mean(), y.mean()
    reach = tuple(
      _meets(xm, ym, s, target)
      for s in (slope, slope + steeper, slope - steeper)
    )
  return Trend(
    group=g.label,
    first=int(steps[keep][0]),
    last=int(steps[keep][-1]),
    n=len(x),
    final=float(y[-1]),
    slope=slope,
    se=se,
    se_runs=se_runs,
    reach=reach,
    power=power,
    limit=limit,
    limit_se_runs=limit_se_runs,
    limit_reach=limit_reach,
  )
