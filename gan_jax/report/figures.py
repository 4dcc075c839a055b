"""The report's figures (matplotlib Figure and Agg canvas, no pyplot), and
write_report, which writes them with the tables."""

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
from gan_jax import rundir
from gan_jax.report import docs, records, stats, tables
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


def plot_curves(
  groups: list[Group],
  panels: list[tuple[str, str, str]],
  path: str,
  *,
  log: bool = False,
  ylim=None,
  markers: bool = False,
  minutes: bool = False,
) -> str | None:
  """One panel per (rows, key, title), rows 'train' or 'evals': a line per
  group (mean over seeds) with a min-max band. Returns `path`, or None when
  no run has a key. With `minutes` the x axis is training time, each
  group's steps divided by its steps_per_sec (stats.minutes_per_step).
  """
  data = [
    [
      stats.aggregate(stats.series(getattr(r, rows), key) for r in g.runs)
      for g in groups
    ]
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
      if minutes:
        steps = steps * stats.minutes_per_step(g)
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
    xlabel = 'training minutes (steps / steps_per_sec)' if minutes else 'step'
    ax.set(title=title, xlabel=xlabel, ylabel=key)
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
  """D and G losses against step; `path` or None."""
  return plot_curves(
    groups,
    [('train', 'd_loss', 'D loss'), ('train', 'g_loss', 'G loss')],
    path,
  )


def plot_d_outputs(groups, path):
  """Mean D(x) and mean D(G(z)) (sigmoid of the logit) against step; `path`
  or None."""
  return plot_curves(
    groups,
    [('train', 'd_real', 'mean D(x)'), ('train', 'd_fake', 'mean D(G(z))')],
    path,
    ylim=(-0.02, 1.02),
  )


def plot_grad_norms(groups, path):
  """G and D parameter-gradient norms against step, log scale; `path` or
  None."""
  return plot_curves(
    groups,
    [
      ('train', 'g_grad_norm', 'G gradient norm'),
      ('train', 'd_grad_norm', 'D gradient norm'),
    ],
    path,
    log=True,
  )


def plot_overfitting(groups, path):
  """D's overfitting against step: mean D(x) on training and on held-out
  images (evaluations, gan_jax/overfitting.py), r_t = E[sign D(x)] on the
  training batches, and ADA's p where a run has it; `path` or None."""
  panels = [
    ('evals', 'd_train', 'mean D(x), training images'),
    ('evals', 'd_heldout', 'mean D(x), held-out images'),
    ('train', 'rt', 'r_t = E[sign D(x)], training batches'),
    ('train', 'ada_p', 'ADA augmentation probability p'),
  ]
  present = [
    p
    for p in panels
    if any(
      p[1] in row for g in groups for r in g.runs for row in getattr(r, p[0])
    )
  ]
  if not any(p[1] == 'd_train' for p in present):
    return None
  return plot_curves(groups, present, path, ylim=(-1.02, 1.02))


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
  """An evaluation metric of the metrics (eval/<metric>) against step;
  `path` or None."""
  return plot_curves(groups, [('evals', metric, metric)], path, markers=True)


def _finals(g: Group, metric: str) -> list[float]:
  """Finite final values of `metric` over the group's runs."""
  return [v for r in g.runs if (v := stats.final_value(r, metric)) is not None]


def plot_final(groups: list[Group], metric: str, path: str) -> str | None:
  """Final `metric` (results) of every run: one column per value of the
  runs' `loss` (all their other settings and seeds pooled, the spread over a
  grid as in Lucic et al. 2018, Fig. 4), else per group; a dot per run, a
  bar at the median. Where every column holds each seed at most once (a
  sweep over loss x seed), a line joins each seed's runs, the pairs a
  paired comparison reads. Returns `path`, or None when no run has it."""
  by = stats.final_columns(groups, metric)
  if not by:
    return None
  linked = stats.seed_linked(by)
  seeds = sorted({s for col in by.values() for s in col}, key=str)
  offset = dict(zip(seeds, np.linspace(-0.15, 0.15, len(seeds))))
  fig = Figure(figsize=(max(4.0, 1.2 * len(by)), 3.2), layout='constrained')
  ax = fig.add_subplot()
  for i, col in enumerate(by.values()):
    values = [v for vs in col.values() for v in vs]
    if linked:
      x = [i + offset[s] for s in col]
    else:
      x = i + np.linspace(-0.15, 0.15, len(values))
    ax.plot(x, values, 'o', alpha=0.7, color=f'C{i % 10}')
    ax.plot([i - 0.3, i + 0.3], [statistics.median(values)] * 2, 'k-')
  if linked:
    for s in seeds:
      xy = [
        (i + offset[s], col[s][0])
        for i, col in enumerate(by.values())
        if s in col
      ]
      ax.plot(*zip(*xy), '-', color='0.6', lw=0.8, zorder=0)
  ax.set_xticks(range(len(by)), list(by), rotation=20, ha='right')
  title = f'final {metric}: a dot per run, bar: median'
  ax.set(ylabel=metric, title=title + ('; lines: a seed' if linked else ''))
  ax.grid(alpha=0.3, axis='y')
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


def write_report(
  groups: list[Group], out: str, notes=(), references=()
) -> list[str]:
  """Writes every figure and table for `groups` into `out`; returns the
  paths written."""
  os.makedirs(out, exist_ok=True)
  table_groups, groups = groups, short_labels(groups)
  paths = [
    plot_losses(groups, os.path.join(out, 'losses.png')),
    plot_d_outputs(groups, os.path.join(out, 'd_outputs.png')),
    plot_grad_norms(groups, os.path.join(out, 'grad_norms.png')),
    plot_overfitting(groups, os.path.join(out, 'overfitting.png')),
  ]
  metrics = eval_metrics(groups)
  paths += [
    plot_eval(groups, m, os.path.join(out, f'eval_{file_name(m)}.png'))
    for m in metrics
  ]
  paths += [
    plot_final(groups, m, os.path.join(out, f'final_{file_name(m)}.png'))
    for m in stats.final_metrics(groups)
  ]
  paths.append(plot_samples(groups, os.path.join(out, 'samples.png')))
  paths.append(
    plot_accuracies(groups, os.path.join(out, 'classifier_accuracy.png'))
  )
  evals = os.path.join(out, 'evals.csv')
  evals_runs = os.path.join(out, records.EVALS_RUNS)
  tables.write_evals(table_groups, metrics, evals, evals_runs)
  written = [evals, evals_runs, os.path.join(out, records.GROUPS)]
  records.write_groups(
    written[-1], {g.label: records.group_entry(g) for g in table_groups}
  )
  paper = []
  if references:
    written.append(os.path.join(out, records.REFERENCE))
    records.write_reference(written[-1], references[0])
    found = docs.verdict_lines([records.load(out)], strict=False)
    if found:
      paper = ['', '## Beside the paper', '', *docs.verdict_table(found)]
  md, csv = os.path.join(out, 'results.md'), os.path.join(out, 'results.csv')
  tables.write_table(
    stats.group_table(table_groups) + stats.real_data_rows(table_groups),
    md,
    csv,
    [*notes, *tables.protocol_notes(table_groups)],
    tables.best_of_table(table_groups) + paper,
  )
  return [p for p in paths if p] + written + [md, csv]
