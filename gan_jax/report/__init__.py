"""A report a person reads, from run and sweep directories.

  python -m gan_jax.report DIR [DIR ...] [--out OUT]
  python -m gan_jax.report DIR --trend parzen_ll --trend_from 50000 \\
      --target 221
  python -m gan_jax.report --records FOLDER [FOLDER ...]
  python -m gan_jax.report --docs [--check] [FILE ...]

Each DIR is a run directory (the layout of gan_jax/rundir.py: config,
metrics, sample grids, final results), a directory of model_<i>/ run
directories (num_models=K) or a sweep directory (a sweep index and one run
directory per point). Nothing is trained or evaluated: every number shown is
read from those files, through gan_jax.rundir; no JAX is imported.

Runs are grouped: a sweep's runs by their point's `group` (points that differ
only in seed), in the sweep index's order; the models of a num_models
directory form one group; any other run is a group of its own.

OUT (default DIR/report) gets one page, report.md, in reading order (what
was read; the comparison: the results table, each group against the first
by the comparison rule, the papers' rows; the evaluation curves; the
samples; the training diagnostics; links to the files), and what it shows:
  eval_<family>.png   a panel per evaluation metric of one family
                      (metrics.family: fd and kid, precision to coverage,
                      ...) against step; a metric evaluated once gets no
                      curve (the table has it); a metric's own spread
                      (kid_std, is_std, parzen_se) is its error bars
  finals.png          a panel per final metric, a dot per run, where some
                      group has several runs
  classifier_accuracy.png  the cas/augment accuracies against the override
                      the groups differ in
  samples.png         the newest sample grid of each group's first run
  training.png        D and G losses, D outputs, gradient norms
  overfitting.png     D on training and held-out images, r_t, ADA's p
  results.csv, evals.csv, and the records (records.py): evals_runs.csv,
  train_runs.csv, groups.json, reference.json
  trend_<metric>.md   with --trend: per group, the least-squares line of
                      the metric's mean over seeds against log2(step) and
                      a saturating fit, and where each meets --target
Curves draw each group's mean over seeds, a band from min to max and a
thin line per seed where it has several; table cells are mean ± std over
seeds (ddof=1), each column head with its unit.

--records redraws the page of a committed records folder in place from the
records alone. --docs rewrites the generated tables of a markdown file from
the records folders they name (report.docs); --check exits 1 naming each
that differs. The G loss figure of the saturation study needs JAX:
experiments/saturation.py writes it.

Modules: read (runs and groups), stats, verdict (the one rule of verdicts
and comparisons), records (a study's committed records), tables, figures,
page (report.md and write_report), docs (generated tables), command (the
flags and `main`).
"""

from gan_jax.report.command import main

__all__ = ['main']
