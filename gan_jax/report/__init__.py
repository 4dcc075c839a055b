"""Figures and tables from run and sweep directories.

  python -m gan_jax.report DIR [DIR ...] [--out OUT]
  python -m gan_jax.report DIR --trend parzen_ll --trend_from 50000 \\
      --target 221
  python -m gan_jax.report --docs [--check] [FILE ...]  (docs/results.md, docs/results/*.md)

Each DIR is a run directory (the layout of gan_jax/rundir.py: config,
metrics, sample grids, final results), a directory of model_<i>/ run
directories (num_models=K) or a sweep directory (a sweep index and one run
directory per point). Nothing is trained or evaluated: every number shown is
read from those files, through gan_jax.rundir; no JAX is imported.

Runs are grouped: a sweep's runs by their point's `group` (points that differ
only in seed), in the sweep index's order; the models of a num_models
directory form one group; any other run is a group of its own. Curves show a
group's mean over seeds at each logged step and, for several seeds, a band
from their minimum to their maximum (it stays positive on log axes, unlike
mean ± std). Tables give mean ± std over seeds, std the sample standard
deviation (ddof=1), left blank for a single seed, where it is undefined.

Written to OUT (default DIR/report):
  losses.png            d_loss and g_loss against step
  d_outputs.png         mean D(x) (d_real) and mean D(G(z)) (d_fake)
  grad_norms.png        G and D gradient norms, log scale
  eval_<metric>.png     each evaluation metric of the metrics file
  evals.csv             their numbers: group, metric, step, mean, min, max
  evals_runs.csv        each run's own: group, run, metric, step, value
  groups.json           each group's overrides and first run's flat config
  reference.json        a sweep's paper rows (its experiment file's
                        get_reference); with them results.md ends with
                        each row's verdict (report.verdict)
  final_<metric>.png    each final metric, a dot per run
  samples.png           the newest sample grid of each group's first run
  classifier_accuracy.png  test accuracy of the classifiers trained on real,
                        real + generated and generated data (the cas and
                        augment metrics) against the override the groups
                        differ in (e.g. data.train_fraction)
  results.md, .csv      per group: overrides, seeds, the final metrics of the
                        runs' results and the last train row's d_real and
                        d_fake
  trend_<metric>.md     with --trend: per group, the least-squares line of
                        the metric's mean over seeds against log2(step)
                        from --trend_from on (gain per doubling ± s.e.,
                        and the s.e. over the runs' own slopes), the
                        saturating fit limit - b (step/first)^-power and
                        its limit and, with --target, the step where each
                        meets it
The G loss figure of the saturation study (each loss's G loss and its
gradient against D(G(z))) needs JAX: experiments/saturation.py writes it.

--docs rewrites the generated tables of a markdown file from the records
folders they name (report.docs); --check exits 1 naming each that differs.

Modules: read (runs and groups), stats, verdict (the one rule of verdicts
and comparisons), records (a study's committed records), tables, figures
(and write_report), docs (generated tables), command (the flags and
`main`).
"""

from gan_jax.report.command import main

__all__ = ['main']
