"""gan_jax.report.verdict: the one rule of verdicts and comparisons, on cases
whose answers are known in closed form; gan_jax.report.docs: the generated
tables of docs/results.md and the check that fails when one is edited."""

import math
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as sps

from gan_jax.report import docs, records
from gan_jax.report.verdict import (
  Claim,
  Paper,
  Sample,
  claim_verdict,
  compare,
  compare_all,
  expected_best,
  holm,
  verdict,
)

REPO = pathlib.Path(__file__).resolve().parents[1]


def _paper(**kw):
  return Paper(**({'margin': 1.0, 'reason': 'test'} | kw))


def test_identical_values_with_small_spread_and_many_seeds_reproduce():
  rng = np.random.default_rng(0)
  ours = Sample.of(10 + 0.01 * rng.standard_normal(30))
  found = verdict(_paper(value=10, error=0.05, kind='se_trials', n=10), ours)
  assert found.label == 'reproduced'
  lo, hi = found.interval
  assert -1 < lo < found.difference < hi < 1


def test_a_far_value_is_not_reproduced():
  found = verdict(
    _paper(value=10, error=0.1, kind='se_trials', n=10),
    Sample.of([20.0, 20.5, 19.5]),
  )
  assert found.label == 'not reproduced'
  assert found.interval[0] > 1  # the whole interval beyond the margin


def test_three_seeds_spread_like_the_ring_gan_modes_are_inconclusive():
  """Ring GAN modes (8, 5, 8) against 6.3 ± 0.5 s.e. over 10 trials, with a
  margin of 2: neither inside nor outside; more seeds at this spread would
  make it reproduced, and fewer are needed as the spread falls."""
  paper = _paper(value=6.3, error=0.5, kind='se_trials', n=10, margin=2.0)
  wide = verdict(paper, Sample.of([8.0, 5.0, 8.0]))
  assert wide.label == 'inconclusive'
  assert wide.seeds_needed is not None and wide.seeds_needed > 3
  at_needed = Sample.summary(7.0, wide_std := math.sqrt(3), wide.seeds_needed)
  assert verdict(paper, at_needed).label == 'reproduced'
  one_fewer = Sample.summary(7.0, wide_std, wide.seeds_needed - 1)
  assert verdict(paper, one_fewer).label == 'inconclusive'
  narrow = verdict(paper, Sample.summary(7.0, wide_std / 2, 3))
  assert narrow.seeds_needed is None or narrow.seeds_needed < wide.seeds_needed
  spreads = [2.0, 1.5, 1.0]
  needed = [
    verdict(paper, Sample.summary(7.0, s, 3)).seeds_needed for s in spreads
  ]
  assert needed == sorted(needed, reverse=True) and needed[0] > needed[-1]


def _half(found):
  lo, hi = found.interval
  return (hi - lo) / 2


def test_each_error_kind_combines_as_documented():
  """Var(d) = s^2/n + the paper's term; df by Welch-Satterthwaite."""
  values = [1.0, 2.0, 4.0, 3.0]
  s, n = float(np.std(values, ddof=1)), 4
  ours = Sample.of(values)
  e = 0.7
  # se_trials: e^2 on n_p - 1 df.
  va, vb = s**2 / n, e**2
  df = (va + vb) ** 2 / (va**2 / (n - 1) + vb**2 / 9)
  got = _half(verdict(_paper(value=0, error=e, kind='se_trials', n=10), ours))
  assert got == pytest.approx(sps.t.ppf(0.975, df) * math.sqrt(va + vb))
  # std_trials: e^2 / n_p.
  vb = e**2 / 10
  df = (va + vb) ** 2 / (va**2 / (n - 1) + vb**2 / 9)
  got = _half(verdict(_paper(value=0, error=e, kind='std_trials', n=10), ours))
  assert got == pytest.approx(sps.t.ppf(0.975, df) * math.sqrt(va + vb))
  # se_examples: one model, s^2 (1/n + 1) on n - 1 df plus an exact e^2.
  va = s**2 * (1 / n + 1)
  df = (va + e**2) ** 2 / (va**2 / (n - 1))
  got = _half(verdict(_paper(value=0, error=e, kind='se_examples'), ours))
  assert got == pytest.approx(sps.t.ppf(0.975, df) * math.sqrt(va + e**2))
  # one_run: s^2 (1/n + 1), a t on n - 1 df.
  got = _half(verdict(_paper(value=0, kind='one_run'), ours))
  assert got == pytest.approx(
    sps.t.ppf(0.975, n - 1) * s * math.sqrt(1 / n + 1)
  )
  # exact: ours alone.
  got = _half(verdict(_paper(value=0, kind='exact'), ours))
  assert got == pytest.approx(sps.t.ppf(0.975, n - 1) * s / math.sqrt(n))
  # A deterministic value against a closed form: no interval width at all.
  det = verdict(
    _paper(value=0.5, kind='exact', margin=0.01),
    Sample.of([0.504], deterministic=True),
  )
  assert det.interval == pytest.approx((0.004, 0.004))
  assert det.label == 'reproduced'


def test_one_seed_gives_no_interval_and_a_budget_below_the_papers_is_noted():
  found = verdict(
    _paper(value=8, kind='one_run', budget=25_000), Sample.of([3.0]), 10_000
  )
  assert found.interval is None and found.label == 'inconclusive'
  assert 'one seed' in found.note and '10,000 of 25,000' in found.note
  with pytest.raises(ValueError, match='margin'):
    Paper(value=1.0)
  with pytest.raises(ValueError, match='kind'):
    _paper(value=1.0, kind='sd')


def test_a_consistent_paired_effect_is_found_where_welch_misses_it():
  """Three seeds worse by 6-9 each, with seed effects of +-35: Welch cannot
  see it; paired by seed, the t on the differences does."""
  base = np.array([350.0, 420.0, 362.0])
  a = Sample.of(base + [7.0, 9.0, 6.0], ['seed=0', 'seed=1', 'seed=2'])
  b = Sample.of(base, ['seed=0', 'seed=1', 'seed=2'])
  paired = compare(a, b)
  diffs = np.array([7.0, 9.0, 6.0])
  t = diffs.mean() / (diffs.std(ddof=1) / math.sqrt(3))
  assert paired.paired and paired.p == pytest.approx(2 * sps.t.sf(t, 2))
  assert paired.p < 0.05 and paired.interval[0] > 0
  unpaired = compare(Sample.of(a.values), Sample.of(b.values))
  assert not unpaired.paired and unpaired.p > 0.5
  welch = sps.ttest_ind(a.values, b.values, equal_var=False)
  assert unpaired.p == pytest.approx(welch.pvalue)
  assert unpaired.seeds_needed > 3  # at this spread it takes more seeds


def test_holm_adjusts_in_order_and_compare_all_applies_it():
  assert holm([0.01, 0.04, 0.03, None]) == pytest.approx(
    [0.03, 0.06, 0.06, None]
  )
  assert holm([0.5, 0.9]) == [1.0, 1.0]
  a, b = Sample.of([1.0, 2.0, 3.0]), Sample.of([5.0, 6.0, 7.5])
  found = compare_all([(a, b), (b, a)])
  assert found[0].p_holm == pytest.approx(min(1, 2 * found[0].p))


def test_a_finding_is_read_from_the_sign_and_p_of_its_difference():
  """Paired differences of 7, 9, 6 (p 0.013): the claim 'higher'
  reproduces, 'lower' does not; a noisy difference is inconclusive with the
  seeds that would decide; a margin denies a finding whose interval lies
  inside it."""
  seeds = ['seed=0', 'seed=1', 'seed=2']
  base = np.array([350.0, 420.0, 362.0])
  c = compare(Sample.of(base + [7.0, 9.0, 6.0], seeds), Sample.of(base, seeds))
  up, down = Claim('a − b', 1), Claim('a − b', -1)
  assert claim_verdict(up, c).label == 'reproduced'
  assert claim_verdict(down, c).label == 'not reproduced'
  assert claim_verdict(up, c).interval == c.interval
  noisy = compare(
    Sample.of(base + [7.0, -5.0, 6.0], seeds), Sample.of(base, seeds)
  )
  found = claim_verdict(up, noisy)
  assert found.label == 'inconclusive' and found.seeds_needed > 3
  assert f'{found.seeds_needed} seeds would decide' in found.text()
  tiny = compare(
    Sample.of(base + [0.1, -0.1, 0.05], seeds), Sample.of(base, seeds)
  )
  assert claim_verdict(up, tiny).label == 'inconclusive'
  assert claim_verdict(Claim('a − b', 1, 1.0, 'test'), tiny).label == (
    'not reproduced'
  )
  one = compare(Sample.of([1.0]), Sample.of([2.0]))
  assert claim_verdict(down, one).interval is None
  assert 'no spread' in claim_verdict(down, one).text()
  with pytest.raises(ValueError, match='reason'):
    Claim('a − b', 1, 1.0)
  with pytest.raises(ValueError, match='sign'):
    Claim('a − b', 0)


def test_expected_best_of_k_trials_matches_enumeration():
  scores = [5.0, 1.0, 3.0, 4.0]
  # k = 2 with replacement: the mean of the min over all 16 ordered pairs.
  pairs = [min(x, y) for x in scores for y in scores]
  assert expected_best(scores, 2) == pytest.approx(np.mean(pairs))
  assert expected_best(scores, 1) == pytest.approx(np.mean(scores))
  assert expected_best(scores, 2, lower_is_better=False) == pytest.approx(
    np.mean([max(x, y) for x in scores for y in scores])
  )
  assert expected_best(scores, 200) == pytest.approx(1.0)


def _leg(path, values, reference=None):
  """A records folder: group g with runs seed=0.. of metric m at step 10."""
  path.mkdir(parents=True)
  rows = [
    (g, f'seed={i}', 'm', 10, x)
    for g, xs in values.items()
    for i, x in enumerate(xs)
  ]
  records.write_curves(str(path / records.EVALS_RUNS), rows)
  records.write_groups(
    str(path / records.GROUPS),
    {g: {'overrides': {}, 'config': {'name': g}} for g in values},
  )
  if reference:
    records.write_reference(str(path / records.REFERENCE), reference)


REFERENCE = {
  'source': 'Some et al.',
  'rows': [
    {
      'label': 'setting a',
      'where': {'name': 'a'},
      'metrics': {
        'm': {
          'value': 5.0,
          'error': 0.1,
          'kind': 'se_trials',
          'n': 10,
          'margin': 1.0,
          'reason': 'test',
        }
      },
    },
    {
      'label': 'setting z',
      'where': {'name': 'z'},
      'metrics': {
        'm': {'value': 1.0, 'kind': 'one_run', 'margin': 1.0, 'reason': 'test'}
      },
    },
  ],
}
DOC = """# R
## 1. A study
<!-- table verdicts records=results/leg command='python launch.py x' -->
<!-- /table -->
<!-- table compare records=results/leg metric=m against=b -->
<!-- /table -->
## Summary
<!-- table summary -->
<!-- /table -->
"""


def test_docs_tables_regenerate_and_the_check_names_an_edited_number(tmp_path):
  _leg(
    tmp_path / 'results' / 'leg',
    {'a': [5.1, 4.9, 5.0, 5.05], 'b': [7.0, 7.2, 6.9, 7.1]},
    REFERENCE,
  )
  doc = tmp_path / 'results.md'
  doc.write_text(DOC)
  cmd = [sys.executable, '-m', 'gan_jax.report', '--docs']
  subprocess.run([*cmd, str(doc)], check=True, cwd=REPO)
  text = doc.read_text()
  assert '| setting a | m | 5 ± 0.1 (s.e. over 10 trials) |' in text
  assert '**reproduced**' in text and '| setting z |' in text  # not run
  assert text.count('| 1. A study | Some et al.: setting') == 2
  assert 'paired t (4 seeds)' in text
  ok = subprocess.run([*cmd, '--check', str(doc)], cwd=REPO)
  assert ok.returncode == 0
  doc.write_text(text.replace('5 ± 0.1 (s.e. over 10 trials)', '5 ± 0.2'))
  bad = subprocess.run(
    [*cmd, '--check', str(doc)], cwd=REPO, capture_output=True, text=True
  )
  assert bad.returncode == 1 and 'table verdicts records=results/leg' in (
    bad.stderr
  )
  assert 'Traceback' not in bad.stderr


def test_a_finding_block_renders_and_a_summary_gathers_the_pages(tmp_path):
  """A finding on a study page (records beside it) is one table row with
  its verdict; the summary of a page naming it with pages= lists that row
  under the page's title, linked."""
  _leg(
    tmp_path / 'results' / 'leg',
    {'a': [5.1, 4.9, 5.0, 5.05], 'b': [7.0, 7.2, 6.9, 7.1]},
  )
  page = tmp_path / 'results' / 'study.md'
  page.write_text(
    '# A study\n<!-- table finding records=leg metric=m group=a against=b '
    "sign=lower source='Some et al.' claim='a lowers m' -->\n<!-- /table -->\n"
  )
  page.write_text(docs.render(page.read_text(), str(page.parent)))
  assert '| Some et al.: a lowers m | m: a − b < 0 |' in page.read_text()
  assert '| **reproduced** |' in page.read_text()
  top = '# R\n<!-- table summary pages=results/*.md -->\n<!-- /table -->\n'
  summary = docs.render(top, str(tmp_path))
  assert '| [A study](results/study.md) | Some et al.: a lowers m | m |' in (
    summary
  )
  assert (
    '**reproduced**' in summary and docs.check(summary, str(tmp_path)) == []
  )
  bad = page.read_text().replace('sign=lower', 'sign=less')
  with pytest.raises(Exception, match='sign'):
    docs.render(bad, str(page.parent))


def test_a_paper_row_matching_two_groups_is_refused(tmp_path):
  ref = {
    'source': 'S',
    'rows': [{'where': {}, 'metrics': REFERENCE['rows'][0]['metrics']}],
  }
  _leg(tmp_path / 'leg', {'a': [1.0, 2.0], 'b': [1.0, 2.0]}, ref)
  with pytest.raises(Exception, match='matches 2 groups'):
    docs.verdict_lines([records.load(str(tmp_path / 'leg'))])


PAGES = [REPO / 'docs' / 'results.md'] + sorted(
  (REPO / 'docs' / 'results').glob('*.md')
)


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.name)
def test_the_committed_results_match_their_records(page):
  """docs/results.md's generated tables, and those of each study page
  beside the records (docs/results/*.md), are what their records give."""
  text = page.read_text()
  assert docs.BLOCK.search(text), f'{page} has no generated table'
  assert docs.check(text, str(page.parent)) == []


def test_a_copy_of_the_results_with_one_number_edited_fails_the_check(
  tmp_path,
):
  shutil.copytree(
    REPO / 'docs' / 'results',
    tmp_path / 'results',
    ignore=shutil.ignore_patterns('*.png'),
  )
  text = (REPO / 'docs' / 'results.md').read_text()
  fresh = docs.render(text, str(tmp_path))
  m = docs.BLOCK.search(fresh)
  body = m['body']
  digit = next(i for i, c in enumerate(body) if c.isdigit() and i > 40)
  edited = body[:digit] + str((int(body[digit]) + 1) % 10) + body[digit + 1 :]
  broken = fresh[: m.start('body')] + edited + fresh[m.end('body') :]
  assert docs.check(fresh, str(tmp_path)) == []
  assert len(docs.check(broken, str(tmp_path))) == 1


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.name)
def test_no_table_of_the_results_has_a_bare_plus_minus(page):
  """Every '±' in a table of docs/results.md and of the study pages says
  what it is, in its cell or its column's head (s.e., std, CI, trials), and
  each page stays a reference of at most 600 lines."""
  text = page.read_text()
  assert len(text.splitlines()) <= 600
  kinds = ('s.e.', 'std', 'CI', 'trials')
  head = []
  for line in text.splitlines():
    if not line.startswith('|'):
      head = []
      continue
    cells = [c.strip() for c in line.strip('|').split(' | ')]
    if not head:
      head = cells
      continue
    for h, cell in zip(head, cells):
      if '±' in cell:
        assert any(k in cell or k in h for k in kinds), (h, cell)
