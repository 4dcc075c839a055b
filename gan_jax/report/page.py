"""The report's page, OUT/report.md, and `write_report`, which writes it
with every figure and table it shows.

The page reads top to bottom: what was read (groups, runs, seeds, steps,
the evaluation protocol), the comparison (the results table with units,
each group against the first by the comparison rule, the papers' rows),
the evaluation curves, the samples, the training diagnostics, then the
files. Every figure has a caption saying what it shows and what its
bands and error bars are.
"""

import os
import sys
import time

from gan_jax import metrics, rundir
from gan_jax.report import docs, figures, records, stats, tables
from gan_jax.report import verdict as v
from gan_jax.report.read import Group

PAGE = 'report.md'
RESULTS_CSV = records.RESULTS_CSV
EVALS_CSV = 'evals.csv'

FILES = {
  records.TRAIN_RUNS: "each run's train rows (losses, D outputs, gradient "
  'norms, rates), at most 100 steps a run: what redraws the diagnostics',
  RESULTS_CSV: 'per group: mean and std over seeds of every final metric '
  "(a metric's own spread included), n, step",
  EVALS_CSV: "the evaluation curves' numbers: group, metric, step, mean, "
  'min, max over seeds',
  records.EVALS_RUNS: "each run's own evaluations (group, run, metric, step, "
  'value): the records that outlive the run directories',
  records.GROUPS: "each group's overrides and its first run's config",
  records.REFERENCE: "the papers' rows (the experiment file's get_reference)",
}


def progress(message: str) -> None:
  """A progress line on stderr (stdout lists the files written)."""
  print(f'report: {message}', file=sys.stderr, flush=True)


def _seeds(g: Group) -> str:
  """The seeds of a group's runs, '0-2' or '0, 3'."""
  seeds = sorted({r.config.get('seed') for r in g.runs}, key=str)
  if (
    all(isinstance(s, int) for s in seeds)
    and seeds == list(range(seeds[0], seeds[0] + len(seeds)))
    and len(seeds) > 2
  ):
    return f'{seeds[0]}-{seeds[-1]}'
  return ', '.join(str(s) for s in seeds)


def _read_section(groups, dirs, notes, rows=()) -> list[str]:
  """'What was read': a row per group (per row of `rows`, a records
  folder's results.csv, where no group holds runs) and the notes."""
  if not groups:
    return [
      '## What was read',
      '',
      'The results table of '
      + ', '.join(f'`{d}`' for d in dirs)
      + ' (no per-run records): '
      + ', '.join(f'{r.group} ({r.n} runs)' for r in rows if r.n)
      + '.',
    ]
  body = []
  for g in groups:
    last = sorted(
      {(r.train or r.evals)[-1]['step'] for r in g.runs if r.train or r.evals}
    )
    evals = sorted({row['step'] for r in g.runs for row in r.evals})
    body.append(
      [
        g.label,
        ', '.join(
          f'{k}={tables.value_text(x)}' for k, x in g.overrides.items()
        ),
        str(len(g.runs)),
        _seeds(g),
        '-'.join(f'{s:,}' for s in dict.fromkeys(last[:1] + last[-1:])),
        f'{len(evals)}'
        + (f' ({evals[0]:,} to {evals[-1]:,})' if evals else ''),
      ]
    )
  runs = sum(len(g.runs) for g in groups)
  lines = [
    '## What was read',
    '',
    f'{runs} run(s) in {len(groups)} group(s) from '
    + ', '.join(f'`{d}`' for d in dirs)
    + '. A group is the runs that differ only in seed.',
    '',
    *tables.md_table(
      ['group', 'overrides', 'runs', 'seeds', 'last step', 'evaluations'],
      body,
    ),
  ]
  said = [*notes, *tables.protocol_notes(groups)]
  return lines + (['', *(f'- {n}' for n in said)] if said else [])


def _final_sample(g: Group, metric: str) -> v.Sample | None:
  """The group's final values of `metric`, named by seed for pairing."""
  pairs = [
    (records.seed_key(os.path.basename(os.path.normpath(r.path))), x)
    for r in g.runs
    if (x := stats.final_value(r, metric)) is not None
  ]
  if not pairs:
    return None
  return v.Sample.of([x for _, x in pairs], [k for k, _ in pairs])


def comparisons(groups: list[Group]) -> list[str]:
  """Each group against the first, per ranked final metric, by the
  comparison rule (verdict.compare_all, Holm over a table's rows); none
  unless the first and another group have 2 runs or more."""
  if len(groups) < 2 or len(groups[0].runs) < 2:
    return []
  lines = []
  for m in stats.final_metrics(groups):
    if metrics.direction(m) is None:
      continue
    base = _final_sample(groups[0], m)
    others = [
      (g.label, s)
      for g in groups[1:]
      if (s := _final_sample(g, m)) is not None and s.n > 1
    ]
    if base is None or base.n < 2 or not others:
      continue
    lines += [
      '',
      f'{tables.header(m)}, each group against {groups[0].label} '
      f'({metrics.direction(m)} is better):',
      '',
      *docs.compare_table(
        m,
        groups[0].label,
        [g for g, _ in others],
        [(s, base) for _, s in others],
      ),
    ]
  return lines


def _figure(path: str, caption: str) -> list[str]:
  name = os.path.basename(path)
  return [f'![{name}]({name})', '', f'*{caption}*', '']


def _curve_caption(what: str, groups: list[Group], error: str = '') -> str:
  several = any(len(g.runs) > 1 for g in groups)
  spread = (
    f'; thick line: the mean over seeds, band: {figures.BAND}, thin lines: '
    'each seed'
    if several
    else '; one run a group'
  )
  return f'{what} against update step, a color per group{spread}{error}.'


# What an image a records folder keeps (drawn when its runs were reported,
# from files the records do not hold) shows: its name's start -> caption.
KEPT = (
  (
    'samples.png',
    "The newest sample grid of each group's first run, drawn "
    'when the runs were reported (records keep no samples).',
  ),
  (
    'losses.png',
    'D and G losses against step, drawn when the runs were '
    'reported (these records keep no train rows).',
  ),
  (
    'd_outputs.png',
    'Mean D(x) and D(G(z)) against step, drawn when the runs '
    'were reported (these records keep no train rows).',
  ),
  (
    'grad_norms.png',
    'G and D gradient norms against step, drawn when the '
    'runs were reported (these records keep no train rows).',
  ),
  (
    'overfitting.png',
    "D's overfitting against step (D(x) on training and held-out images, "
    "r_t, ADA's p), drawn when the runs were reported (these records keep "
    'no train rows).',
  ),
  (
    'eval_',
    '{metric} against step, drawn when the runs were '
    'reported: the mean over seeds, a band from min to max (these records '
    'keep no per-run evaluations).',
  ),
  (
    'final_',
    'Final {metric}, a dot per run and a bar at the median, drawn '
    'when the runs were reported.',
  ),
  ('', "A figure of the study's own command (its page says which)."),
)
KEPT_SECTIONS = {
  'samples.png': 'samples',
  'losses.png': 'diagnostics',
  'd_outputs.png': 'diagnostics',
  'grad_norms.png': 'diagnostics',
  'overfitting.png': 'diagnostics',
  'final_': 'comparison',
}


def _kept(
  out: str, drawn: list, per_run: bool, trained: bool, several: bool
) -> list:
  """The images of `out` this report did not draw, as (section, path,
  caption); removes those the new figures replace (with per-run records,
  every eval_ and final_ figure: the new ones were drawn or judged empty
  of information from the same values; with train rows, the loose
  diagnostics), any figure of a metric's own spread, and the final_
  figures where no group has several runs (a dot each)."""
  errors = tuple(f'_{e}.png' for e in metrics.error_keys().values())
  ours = {os.path.basename(p) for _, p, _ in drawn}
  kept = []
  for name in sorted(os.listdir(out)):
    path = os.path.join(out, name)
    if not name.endswith('.png') or name in ours:
      continue
    gone = (
      name.endswith(errors)
      or (per_run and name.startswith(('eval_', 'final_')))
      or (not several and name.startswith('final_'))
      or (trained and name in ('losses.png', 'd_outputs.png', 'grad_norms.png'))
    )
    if gone:
      os.remove(path)
      continue
    metric = name.split('_', 1)[-1].removesuffix('.png')
    caption = next(c for start, c in KEPT if name.startswith(start))
    caption = caption.format(metric=metric)
    section = next(
      (s for start, s in KEPT_SECTIONS.items() if name.startswith(start)),
      'curves',
    )
    kept.append((section, path, caption))
  return kept


def write_report(
  groups: list[Group],
  out: str,
  notes=(),
  references=(),
  dirs=(),
  more=(),
  rows=None,
) -> list[str]:
  """Writes report.md and every figure and table it shows for `groups`
  into `out` (`dirs`: what was read, named on the page; `more`: files
  already written there that the page links, a trend table); returns the
  paths written (report.md last). With `rows` (a records folder's
  results.csv read back) the folder's records are the input: they are
  read, not written, and the images it keeps are shown beside the
  figures redrawn."""
  os.makedirs(out, exist_ok=True)
  t0 = time.perf_counter()
  from_records = rows is not None
  table_groups, groups = groups, figures.short_labels(groups)
  join = lambda name: os.path.join(out, name)  # noqa: E731
  families = figures.eval_families(groups)
  errors = metrics.error_keys()
  drawn = []  # (section, path, caption)

  def draw(section, fn, name, caption):
    progress(f'figure {name}')
    path = fn(join(name))
    if path:
      drawn.append((section, path, caption))

  for family, names in families.items():
    shown = [
      f'{m} ({metrics.unit(m)})' if metrics.unit(m) else m for m in names
    ]
    own = [
      f"{errors[m]} (each run's own spread of {m})"
      for m in names
      if m in errors
    ]
    draw(
      'curves',
      lambda p, names=names: figures.plot_family(groups, names, p),
      f'eval_{figures.file_name(family)}.png',
      _curve_caption(
        ', '.join(shown),
        groups,
        f'; error bars: {", ".join(own)}' if own else '',
      ),
    )
  draw(
    'curves',
    lambda p: figures.plot_accuracies(groups, p),
    'classifier_accuracy.png',
    'Final test accuracy of the classifiers trained on real, real + '
    'generated and generated data against the setting the groups differ '
    'in: mean ± std over seeds as error bars, a dot per run.',
  )
  draw(
    'comparison',
    lambda p: figures.plot_finals(groups, p),
    'finals.png',
    'Final value of each metric, a panel each: a dot per run, a bar at the '
    "median; a gray line joins one seed's runs where each column holds each "
    'seed once.',
  )
  draw(
    'samples',
    lambda p: figures.plot_samples(groups, p),
    'samples.png',
    "The newest sample grid of each group's first run (its run and step "
    'above each grid).',
  )
  trained = any(r.train for g in groups for r in g.runs)
  if trained or not from_records:  # else keep the images drawn from the runs
    draw(
      'diagnostics',
      lambda p: figures.plot_training(groups, p),
      'training.png',
      _curve_caption(
        'D and G losses, mean D(x) and D(G(z)) (sigmoid of the logit) on '
        'the training batches, G and D gradient norms (log scale)',
        groups,
      ),
    )
    draw(
      'diagnostics',
      lambda p: figures.plot_overfitting(groups, p),
      'overfitting.png',
      _curve_caption(
        "D's overfitting: mean D(x) on training and on held-out images "
        '(each evaluation), r_t = E[sign D(x)] on the training batches, '
        "ADA's p",
        groups,
      ),
    )
  new = [p for _, p, _ in drawn]
  if from_records:
    drawn += _kept(
      out, drawn, bool(groups), trained, any(r.n > 1 for r in rows)
    )
  progress('tables')
  evals = figures.eval_metrics(groups)
  if groups and not (from_records and os.path.exists(join(EVALS_CSV))):
    tables.write_evals(
      table_groups,
      evals,
      join(EVALS_CSV),
      None if from_records else join(records.EVALS_RUNS),
    )
  written = [join(EVALS_CSV)] if os.path.exists(join(EVALS_CSV)) else []
  if not from_records:
    records.write_groups(
      join(records.GROUPS),
      {g.label: records.group_entry(g) for g in table_groups},
    )
    records.write_train(join(records.TRAIN_RUNS), table_groups)
    written += [
      join(records.EVALS_RUNS),
      join(records.GROUPS),
      join(records.TRAIN_RUNS),
    ]
    if references:
      written.append(join(records.REFERENCE))
      records.write_reference(written[-1], references[0])
    rows = stats.group_table(table_groups) + stats.real_data_rows(table_groups)
    tables.write_results_csv(rows, join(RESULTS_CSV))
    written.append(join(RESULTS_CSV))
  inputs = []
  if from_records:
    names = (RESULTS_CSV, records.EVALS_RUNS, records.GROUPS)
    names += (records.TRAIN_RUNS, records.REFERENCE)
    inputs = [join(n) for n in names if os.path.exists(join(n))]
  paper = []
  if join(records.REFERENCE) in written + inputs:  # not one a past report left
    found = docs.verdict_lines([records.load(out)], strict=False)
    if found:
      paper = ['', '### Beside the paper', '', *docs.verdict_table(found)]
  once = [
    m
    for m in evals
    if m not in figures.curve_metrics(groups)
    and m not in errors.values()
    and m not in figures.PROBE
  ]

  def figures_of(section):
    return [x for s, p, c in drawn if s == section for x in _figure(p, c)]

  links = [
    f'- [{os.path.basename(p)}]({os.path.basename(p)}): '
    f'{FILES[os.path.basename(p)]}'
    for p in inputs + written
  ]
  text = [
    '# Report',
    '',
    *_read_section(table_groups, dirs, notes, rows),
    '',
    '## Comparison',
    '',
    tables.RESULTS_NOTE,
    '',
    *tables.results_table(rows),
    *comparisons(table_groups),
    *tables.best_of_table(table_groups),
    *paper,
    '',
    *figures_of('comparison'),
    '## Evaluation curves',
    '',
    *figures_of('curves'),
    *(
      [f'Evaluated once, so in the table only: {", ".join(once)}.', '']
      if once
      else []
    ),
    '## Samples',
    '',
    *(figures_of('samples') or ['No run wrote a sample grid.', '']),
    '## Training diagnostics',
    '',
    *(figures_of('diagnostics') or ['No train rows were read.', '']),
    '## Files',
    '',
    *links,
    *(f'- [{os.path.basename(p)}]({os.path.basename(p)})' for p in more),
  ]
  rundir.write_text(join(PAGE), '\n'.join(text).rstrip('\n') + '\n')
  progress(
    f'{len(drawn)} figures and {PAGE} in {time.perf_counter() - t0:.1f} s'
  )
  return new + written + [join(PAGE)]


def write_records_report(folder: str) -> list[str]:
  """Redraws the report page of a committed records folder from its
  records alone (records.groups_of; results.csv's table where it has one)
  in place; returns the paths written."""
  rec = records.load(folder)
  groups = records.groups_of(rec)
  path = os.path.join(folder, RESULTS_CSV)
  if os.path.exists(path):
    rows = records.results_rows(path)
  else:
    rows = stats.group_table(groups)
  stale = os.path.join(folder, 'results.md')  # the page before report.md
  if os.path.exists(stale):
    os.remove(stale)
  return write_report(groups, folder, dirs=[folder], rows=rows)
