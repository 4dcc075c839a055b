"""The report's figures (matplotlib Figure and Agg canvas, no pyplot).

Curves draw each group's mean over seeds (thick), a band from min to max
and each seed's own line (thin) where a group has several runs, and a
metric's own spread (metrics.error_keys) as error bars; every artist is
named by its gid ('mean:<group>', 'band:<group>', 'seed:<group>:<run>',
'error:<group>:<run>') so a test reads the figure's data."""

import dataclasses
import io
import os
import re
import statistics
import textwrap

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from gan_jax import config as config_lib
from gan_jax import metrics, rundir
from gan_jax.report import stats
from gan_jax.report.read import Group


def _colors(n: int) -> list:
  """n colors of tab10 (tab20 beyond 10), cycling."""
  cmap = matplotlib.colormaps['tab10' if n <= 10 else 'tab20']
  return [cmap(i % cmap.N) for i in range(n)]


def _save(fig: Figure, path: str, dpi: int = 100) -> str:
  """Writes `fig` to `path` (its format by the extension), whole or not at
  all; returns `path`."""
  FigureCanvasAgg(fig)
  data = io.BytesIO()
  fig.savefig(
    data,
    format=os.path.splitext(path)[1][1:],
    dpi=dpi,
    bbox_inches='tight',
    pad_inches=0.05,
  )
  rundir.write_bytes(path, data.getvalue())
  return path


def _legend_label(g: Group) -> str:
  return g.label if len(g.runs) == 1 else f'{g.label} (n={len(g.runs)})'


@dataclasses.dataclass(frozen=True)
class Panel:
  """One panel of a curve figure: `key` of each run's `rows` ('train' or
  'evals') against step; `error`: the key of each row's own spread (drawn
  as error bars on each run's points)."""

  rows: str
  key: str
  title: str
  error: str | None = None
  log: bool = False
  ylim: tuple | None = None


BAND = 'min to max over seeds'


def _draw(ax, groups, colors, panel: Panel, minutes: bool, markers: bool):
  """A panel's artists, each named by its gid: 'mean:<group>' (the mean
  over seeds), 'band:<group>' (min to max, several seeds),
  'seed:<group>:<run>' (each run, thin, several seeds), 'error:<group>:
  <run>' (a run's own spread as error bars). Returns whether it drew."""
  drew = False
  for g, color in zip(groups, colors):
    runs = [
      (r, stats.series(getattr(r, panel.rows), panel.key)) for r in g.runs
    ]
    steps, mean, lo, hi = stats.aggregate(s for _, s in runs)
    if not len(steps):
      continue
    drew = True
    scale = stats.minutes_per_step(g) if minutes else 1
    several = len(g.runs) > 1
    ax.plot(
      steps * scale,
      mean,
      color=color,
      lw=1.8,
      label=_legend_label(g),
      marker='o' if markers else None,
      markersize=3,
      gid=f'mean:{g.label}',
    )
    if several:
      ax.fill_between(
        steps * scale,
        lo,
        hi,
        color=color,
        alpha=0.15,
        lw=0,
        gid=f'band:{g.label}',
      )
    for r, (s, values) in runs:
      name = os.path.basename(os.path.normpath(r.path))
      if several:
        ax.plot(
          s * scale,
          values,
          color=color,
          lw=0.6,
          alpha=0.6,
          gid=f'seed:{g.label}:{name}',
        )
      if panel.error:
        s_err, err = stats.series(getattr(r, panel.rows), panel.error)
        at = dict(zip(s_err.tolist(), err))
        keep = [i for i, x in enumerate(s.tolist()) if x in at]
        if keep:
          bars = ax.errorbar(
            s[keep] * scale,
            values[keep],
            yerr=[at[s[i]] for i in keep],
            fmt='none',
            ecolor=color,
            elinewidth=0.8,
            capsize=2,
            alpha=0.7,
          )
          bars.lines[2][0].set_gid(f'error:{g.label}:{name}')
  return drew


def curve_figure(
  groups: list[Group],
  panels: list[Panel],
  *,
  ncols: int = 2,
  markers: bool = False,
  minutes: bool = False,
) -> Figure | None:
  """A panel per Panel (those some run holds), a line per group: the mean
  over seeds, a band from min to max and a thin line per run where a group
  has several, each run's own spread as error bars where the panel names
  one. None when no run holds any panel's key."""
  colors = _colors(len(groups))
  present = [
    p
    for p in panels
    if any(
      len(stats.series(getattr(r, p.rows), p.key)[0])
      for g in groups
      for r in g.runs
    )
  ]
  if not present:
    return None
  cols = min(ncols, len(present))
  rows = -(-len(present) // cols)
  fig = Figure(figsize=(4.6 * cols, 3.4 * rows + 0.6), layout='constrained')
  for i, p in enumerate(present):
    ax = fig.add_subplot(rows, cols, i + 1)
    _draw(ax, groups, colors, p, minutes, markers)
    xlabel = 'training minutes (steps / steps_per_sec)' if minutes else 'step'
    ax.set(title=p.title, xlabel=xlabel)
    if p.log:
      ax.set_yscale('log')
    if p.ylim:
      ax.set_ylim(*p.ylim)
    ax.grid(alpha=0.3)
  handles, labels = [], []
  for ax in fig.axes:
    for h, lab in zip(*ax.get_legend_handles_labels()):
      if lab not in labels:
        handles.append(h)
        labels.append(lab)
  several = any(len(g.runs) > 1 for g in groups)
  fig.legend(
    handles,
    labels,
    loc='outside lower center',
    ncol=min(len(labels), 4),
    fontsize=8,
    title_fontsize=8,
    title=f'thick: mean over seeds; band: {BAND}; thin: each seed'
    if several
    else None,
  )
  return fig


def plot_curves(
  groups, panels, path, *, markers=False, minutes=False, ncols=2
) -> str | None:
  """curve_figure of `panels` (Panels, or (rows, key, title) triples)
  written to `path`; `path`, or None when no run holds a key."""
  panels = [p if isinstance(p, Panel) else Panel(*p) for p in panels]
  fig = curve_figure(
    groups, panels, ncols=ncols, markers=markers, minutes=minutes
  )
  return None if fig is None else _save(fig, path)


TRAINING = (
  Panel('train', 'd_loss', 'D loss'),
  Panel('train', 'g_loss', 'G loss'),
  Panel('train', 'd_real', 'mean D(x)', ylim=(-0.02, 1.02)),
  Panel('train', 'd_fake', 'mean D(G(z))', ylim=(-0.02, 1.02)),
  Panel('train', 'g_grad_norm', 'G gradient norm (log)', log=True),
  Panel('train', 'd_grad_norm', 'D gradient norm (log)', log=True),
)


def plot_training(groups, path):
  """The training diagnostics in one figure: D and G losses, mean D(x) and
  D(G(z)) (sigmoid of the logit), G and D gradient norms; `path` or None."""
  return plot_curves(groups, TRAINING, path)


OVERFITTING = (
  Panel('evals', 'd_train', 'mean D(x), training images', ylim=(-0.02, 1.02)),
  Panel('evals', 'd_heldout', 'mean D(x), held-out images', ylim=(-0.02, 1.02)),
  Panel(
    'train', 'rt', 'r_t = E[sign D(x)], training batches', ylim=(-1.02, 1.02)
  ),
  Panel('train', 'ada_p', 'ADA augmentation probability p', ylim=(-0.02, 1.02)),
)
# The probe's evaluation scalars (gan_jax/overfitting.py): overfitting.png
# draws them, not the evaluation families.
PROBE = ('d_train', 'd_heldout', 'd_gap', 'rt_train', 'rt_heldout')


def plot_overfitting(groups, path):
  """D's overfitting against step: mean D(x) on training and on held-out
  images (evaluations, gan_jax/overfitting.py), r_t = E[sign D(x)] on the
  training batches, and ADA's p where a run has it; `path`, or None
  without the probe's evaluations."""
  if not any(
    'd_train' in row for g in groups for r in g.runs for row in r.evals
  ):
    return None
  return plot_curves(groups, OVERFITTING, path)


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


def curve_metrics(groups: list[Group]) -> list[str]:
  """The evaluation metrics a curve shows: evaluated at 2 steps or more by
  some run, neither another's spread (metrics.error_keys) nor the
  overfitting probe's (overfitting.png)."""
  errors = set(metrics.error_keys().values())
  return [
    m
    for m in eval_metrics(groups)
    if m not in errors
    and m not in PROBE
    and any(
      len(stats.series(r.evals, m)[0]) > 1 for g in groups for r in g.runs
    )
  ]


def eval_families(groups: list[Group]) -> dict[str, list[str]]:
  """{family: its curve_metrics}, a figure each (metrics.family)."""
  out = {}
  for m in curve_metrics(groups):
    out.setdefault(metrics.family(m), []).append(m)
  return out


def _titled(m: str) -> str:
  u = metrics.unit(m)
  return f'{m} ({u})' if u else m


def plot_family(groups, names, path):
  """A panel per evaluation metric of `names` against step (each run's own
  spread as error bars where its metric gives one); `path` or None."""
  errors = metrics.error_keys()
  panels = [Panel('evals', m, _titled(m), errors.get(m)) for m in names]
  return plot_curves(groups, panels, path, markers=True, ncols=3)


def _finals(g: Group, metric: str) -> list[float]:
  """Finite final values of `metric` over the group's runs."""
  return [v for r in g.runs if (v := stats.final_value(r, metric)) is not None]


def final_figure_metrics(groups: list[Group]) -> list[str]:
  """The final metrics a final-value figure shows: none unless some group
  has several runs with results (a dot per run says nothing a table row
  does not otherwise); never a metric's own spread."""
  if not any(
    len(_finals(g, m)) > 1 for g in groups for m in stats.final_metrics(groups)
  ):
    return []
  errors = set(metrics.error_keys().values())
  return [m for m in stats.final_metrics(groups) if m not in errors]


def _final_axis(ax, groups, metric):
  """plot_finals' panel of one metric."""
  by = stats.final_columns(groups, metric)
  linked = stats.seed_linked(by)
  seeds = sorted({s for col in by.values() for s in col}, key=str)
  offset = dict(zip(seeds, np.linspace(-0.15, 0.15, len(seeds))))
  for i, col in enumerate(by.values()):
    values = [v for vs in col.values() for v in vs]
    if linked:
      x = [i + offset[s] for s in col]
    else:
      x = i + np.linspace(-0.15, 0.15, len(values))
    ax.plot(x, values, 'o', alpha=0.7, color=f'C{i % 10}', gid=f'runs:{i}')
    ax.plot([i - 0.3, i + 0.3], [statistics.median(values)] * 2, 'k-')
  if linked:
    for s in seeds:
      xy = [
        (i + offset[s], col[s][0])
        for i, col in enumerate(by.values())
        if s in col
      ]
      ax.plot(*zip(*xy), '-', color='0.6', lw=0.8, zorder=0)
  ax.set_xticks(range(len(by)), list(by), rotation=20, ha='right', fontsize=7)
  ax.set_title(_titled(metric), fontsize=9)
  ax.grid(alpha=0.3, axis='y')
  return linked


def plot_finals(groups: list[Group], path: str) -> str | None:
  """Final value of each final metric (final_figure_metrics) of every run,
  a panel each: one column per value of the runs' `loss` (all their other
  settings and seeds pooled, the spread over a grid as in Lucic et al.
  2018, Fig. 4), else per group; a dot per run, a bar at the median; where
  every column holds each seed at most once, a line joins each seed's
  runs (the pairs a paired comparison reads). `path` or None."""
  names = [
    m for m in final_figure_metrics(groups) if stats.final_columns(groups, m)
  ]
  if not names:
    return None
  cols = min(3, len(names))
  rows = -(-len(names) // cols)
  width = max(4.0, 0.9 * len(groups) + 1.5)
  fig = Figure(figsize=(width * cols, 3.2 * rows), layout='constrained')
  for i, m in enumerate(names):
    _final_axis(fig.add_subplot(rows, cols, i + 1), groups, m)
  return _save(fig, path)


# Final metric -> what the classifier behind it was trained on.
ACCURACIES = (
  ('real_accuracy', 'real'),
  ('augmented_accuracy', 'real + generated'),
  ('cas', 'generated only (CAS)'),
)


def plot_accuracies(groups: list[Group], path: str) -> str | None:
  """Final test accuracies of the cas/augment classifiers: a line per
  training set over the one numeric override the groups differ in (log
  axis when it spans a decade), else over the groups; mean ± std over
  seeds as error bars, a dot per run. Returns `path`, or None without such
  metrics."""
  present = [
    (m, lab) for m, lab in ACCURACIES if any(_finals(g, m) for g in groups)
  ]
  if not present:
    return None
  keys = config_lib.differing([g.overrides for g in groups])
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
    mean_stds = [stats.mean_std(v) for _, v in points]
    ax.errorbar(
      [x for x, _ in points],
      [m for m, _ in mean_stds],
      yerr=[sd or 0.0 for _, sd in mean_stds],
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
  """The newest sample grid of each group's first run that has one; `path`,
  or None when no run has samples."""
  tiles = []
  for g in groups:
    run = next((r for r in g.runs if r.sample), None)
    if run:
      step = rundir.sample_step(run.sample)
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


def plot_generator_losses(curves, path: str) -> str | None:
  """The saturation figure: G loss and its logit gradient against D(G(z)).

  curves: (label, d_fake, values, grads) per curve, the last three arrays
  of one length (gan_jax.losses.generator_loss_curves computes values and
  grads). Returns `path`, or None without curves.
  """
  if not curves:
    return None
  fig = Figure(figsize=(10, 4), layout='constrained')
  ax_loss, ax_grad = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
  for (label, d, values, grads), color in zip(curves, _colors(len(curves))):
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


def file_name(name: str) -> str:
  """`name` as a file name: '_' for each character but letters, digits,
  '_', '.' and '-'."""
  return re.sub(r'[^\w.-]', '_', name)


def short_labels(groups: list[Group]) -> list[Group]:
  """The groups labelled for figures by the overrides whose values differ
  between groups, as 'leaf=value' (`data.name=ring` -> `name=ring`; two
  fields with one leaf keep their parents: `g.width=32, d.width=32`)."""
  keys = config_lib.differing([g.overrides for g in groups])
  if not keys:
    return groups
  leaves = [k.rsplit('.', 1)[-1] for k in keys]
  short = {
    k: leaf if leaves.count(leaf) == 1 else '.'.join(k.split('.')[-2:])
    for k, leaf in zip(keys, leaves)
  }
  return [
    dataclasses.replace(
      g,
      label=', '.join(
        f'{short[k]}={g.overrides[k]}' for k in keys if k in g.overrides
      )
      or g.label,
    )
    for g in groups
  ]
