"""One rule for every verdict and comparison: a difference, its confidence
interval, and a label from where the interval lies.

Against a paper (`verdict`): d = ours - paper, with ours the mean over our
seeds and the paper's number as its error's kind says:

  kind          the paper's ±                       its variance in d
  se_trials     s.e. of a mean over n trials        e^2            (df n - 1)
  std_trials    std over n trials                   e^2 / n        (df n - 1)
  se_examples   s.e. over test examples, one model  s^2 + e^2
  one_run       one trial, no error                 s^2
  exact         a closed form                       0

s is our std over seeds (ddof 1): a paper's single model is one draw of
the seed-to-seed spread, which ours estimates. Var(d) = s^2 / n + the
paper's term; the interval is d ± t_(0.975, df) sqrt(Var(d)), df by
Welch-Satterthwaite over the terms' own degrees of freedom (those that share
our s^2 are one term, df n - 1; a test-set s.e. counts as exact). With an
equivalence margin M stated per metric (and why):
  reproduced       the interval lies inside (-M, M)
  not reproduced   it lies entirely outside [-M, M]
  inconclusive     neither; with the seeds at which the interval, at the
                   observed d and spread, would decide (none: no number of
                   our seeds can, the paper's own term alone is too wide)
A budget below the paper's is annotated, never a label of its own.

Between two of our groups (`compare`): the difference of means, paired by
seed where both groups hold the same seeds (a sweep over loss x seed: the
same initialisation and data order), else Welch's; its 95 % interval and
p-value, Holm's correction over a table's comparisons (`holm`), and the
seeds per group at which the observed difference, at the observed spread,
would be resolved.

A paper's qualitative finding (`Claim`: a - b has a stated sign, a and b
two of our groups or two metrics of one group's runs) is read from
`compare`'s a - b (`claim_verdict`), each finding one pre-stated test at
alpha 0.05 (two-sided, so the 95 % interval excludes 0 exactly when
p < alpha):
  reproduced       p < alpha and d has the claimed sign
  not reproduced   p < alpha and d has the other sign, or, with a margin
                   stated (and why), the interval lies inside (-M, M): no
                   effect of the size the finding needs
  inconclusive     neither; with the seeds per group at which the
                   observed d, at the observed spread, would give p < alpha

`expected_best` is the expected best score of k trials
of a random search (Dodge et al. 2019), Lucic et al. 2018's min-FID
against budget.
"""

import dataclasses
import math

import numpy as np
from scipy import stats as sps

KINDS = {
  'se_trials': 's.e. over {n} trials',
  'std_trials': 'std over {n} trials',
  'se_examples': 's.e. over test examples, one model',
  'one_run': 'one run, no error given',
  'exact': 'a closed form',
}
LABELS = ('reproduced', 'not reproduced', 'inconclusive')
LEVEL = 0.95
MAX_SEEDS = 1000  # the search for the seeds that would decide stops here


def fmt(x: float, digits: int = 4) -> str:
  """x to `digits` significant digits, no trailing exponent for usual
  magnitudes ('219.7', '0.025', '8')."""
  if x is None or not math.isfinite(x):
    return str(x)
  return f'{x:.{digits}g}'


@dataclasses.dataclass(frozen=True)
class Paper:
  """A paper's number: value ± error of `kind` (KINDS) over `n` trials,
  the equivalence margin (metric units) and why, and its budget."""

  value: float
  error: float = 0.0
  kind: str = 'one_run'
  n: int = 1
  margin: float = 0.0
  reason: str = ''
  budget: float | None = None  # updates

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f'kind {self.kind!r}: valid: {", ".join(KINDS)}')
    if self.kind in ('se_trials', 'std_trials') and self.n < 2:
      raise ValueError(f'kind {self.kind} needs n >= 2 trials, got {self.n}')
    if self.margin <= 0 or not self.reason:
      raise ValueError('a verdict needs a margin > 0 and its reason')

  @classmethod
  def of(cls, row: dict) -> 'Paper':
    """From a reference's metric entry {'value', 'error', 'kind', 'n',
    'margin', 'reason'} and an optional 'budget'."""
    return cls(**row)

  def text(self) -> str:
    """'225 ± 2 (s.e. over test examples, one model)'."""
    what = KINDS[self.kind].format(n=self.n)
    if self.kind in ('one_run', 'exact'):
      return f'{fmt(self.value)} ({what})'
    return f'{fmt(self.value)} ± {fmt(self.error, 2)} ({what})'


@dataclasses.dataclass(frozen=True)
class Sample:
  """Our values of one metric over seeds: mean, std (ddof 1), n; `runs`
  names each value's run (pairs comparisons by seed) when known.
  `deterministic`: no sampling spread by construction (a closed-form game)."""

  mean: float
  std: float | None
  n: int
  values: tuple[float, ...] = ()
  runs: tuple[str, ...] = ()
  deterministic: bool = False

  @classmethod
  def of(cls, values, runs=(), deterministic=False) -> 'Sample':
    """The sample of `values` (one per run, named by `runs`)."""
    v = np.asarray(values, np.float64)
    if not len(v):
      raise ValueError('no values')
    std = float(np.std(v, ddof=1)) if len(v) > 1 else None
    return cls(
      float(v.mean()),
      0.0 if deterministic else std,
      len(v),
      tuple(float(x) for x in v),
      tuple(runs),
      deterministic,
    )

  @classmethod
  def summary(cls, mean: float, std: float | None, n: int) -> 'Sample':
    """A sample known only by its mean, std and n (a group table's cells)."""
    return cls(float(mean), None if std is None else float(std), int(n))

  @property
  def se(self) -> float | None:
    """std / sqrt(n): the s.e. of the mean (None for one seed)."""
    return None if self.std is None else self.std / math.sqrt(self.n)

  def text(self) -> str:
    """'219.7 ± 1.0 (s.e., n = 3)' or '3.4 (n = 1)'."""
    if self.deterministic:
      return f'{fmt(self.mean)} (deterministic)'
    if self.se is None:
      return f'{fmt(self.mean)} (n = {self.n})'
    return f'{fmt(self.mean)} ± {fmt(self.se, 2)} (s.e., n = {self.n})'


@dataclasses.dataclass(frozen=True)
class Verdict:
  """d = ours - paper, its interval (None without a spread), the label,
  the seeds that would decide an inconclusive one, and a note."""

  difference: float
  interval: tuple[float, float] | None
  margin: float
  label: str
  seeds_needed: int | None = None
  note: str = ''

  def text(self) -> str:
    """The verdict cell: label, seeds needed or why none, the note."""
    parts = [f'**{self.label}**']
    if self.label == 'inconclusive':
      if self.seeds_needed:
        parts.append(f'{self.seeds_needed} seeds would decide')
      elif self.interval is not None:
        parts.append('no number of our seeds decides at this difference')
    if self.note:
      parts.append(self.note)
    return '; '.join(parts)

  def interval_text(self) -> str:
    """'-5.3 [-12, 1.6]': d and its 95 % interval."""
    if self.interval is None:
      return f'{fmt(self.difference, 3)} (no interval)'
    lo, hi = self.interval
    return f'{fmt(self.difference, 3)} [{fmt(lo, 3)}, {fmt(hi, 3)}]'


def _terms(paper: Paper, ours: Sample, n: int, s: float):
  """[(variance, df)] of d with our spread s at n seeds."""
  one_model = paper.kind in ('se_examples', 'one_run')  # one seed's draw
  ours_coef = 0.0 if ours.deterministic else 1 / n + one_model
  terms = []
  if paper.kind == 'se_examples':
    terms.append((paper.error**2, math.inf))
  elif paper.kind == 'se_trials':
    terms.append((paper.error**2, paper.n - 1))
  elif paper.kind == 'std_trials':
    terms.append((paper.error**2 / paper.n, paper.n - 1))
  if ours_coef:
    terms.append((ours_coef * s**2, n - 1))
  return terms


def _half_width(terms, level: float = LEVEL) -> float:
  """t quantile x sqrt(sum of variances), Welch-Satterthwaite df."""
  var = sum(v for v, _ in terms)
  if var == 0:
    return 0.0
  denom = sum(v**2 / df for v, df in terms if v and math.isfinite(df))
  df = var**2 / denom if denom else math.inf
  q = 1 - (1 - level) / 2
  t = sps.norm.ppf(q) if not math.isfinite(df) else sps.t.ppf(q, df)
  return float(t * math.sqrt(var))


def _label(d: float, half: float, margin: float) -> str:
  if abs(d) + half < margin:
    return 'reproduced'
  if abs(d) - half > margin:
    return 'not reproduced'
  return 'inconclusive'


def verdict(paper: Paper, ours: Sample, budget: float | None = None) -> Verdict:
  """The rule of the module docstring; `budget`: our updates, annotated
  when below paper.budget."""
  d = ours.mean - paper.value
  note = ''
  if budget is not None and paper.budget and budget < paper.budget:
    note = (
      f"below the paper's budget ({budget:,.0f} of {paper.budget:,.0f} updates)"
    )
  if ours.deterministic:
    s = 0.0
  elif ours.std is None:
    why = '; '.join(
      x for x in ('one seed: no spread for an interval', note) if x
    )
    return Verdict(d, None, paper.margin, 'inconclusive', None, why)
  else:
    s = ours.std
  half = _half_width(_terms(paper, ours, ours.n, s))
  label = _label(d, half, paper.margin)
  seeds = None
  if label == 'inconclusive' and not ours.deterministic:
    seeds = next(
      (
        n
        for n in range(ours.n + 1, MAX_SEEDS + 1)
        if _label(d, _half_width(_terms(paper, ours, n, s)), paper.margin)
        != 'inconclusive'
      ),
      None,
    )
  return Verdict(d, (d - half, d + half), paper.margin, label, seeds, note)


@dataclasses.dataclass(frozen=True)
class Comparison:
  """a - b for one metric of two of our groups."""

  difference: float
  interval: tuple[float, float] | None
  p: float | None
  paired: bool
  n: int  # pairs, or the smaller group
  seeds_needed: int | None  # per group, to resolve d at alpha
  p_holm: float | None = None


def _paired(a: Sample, b: Sample) -> tuple[np.ndarray, np.ndarray] | None:
  """a's and b's values in the order of their common runs, when both name
  the same runs (seeds)."""
  if not (a.runs and b.runs) or set(a.runs) != set(b.runs):
    return None
  bv = dict(zip(b.runs, b.values))
  return np.asarray(a.values), np.asarray([bv[r] for r in a.runs])


def _t_interval(d: float, se: float, df: float, level: float = LEVEL):
  """(interval, two-sided p) of a t statistic d / se on df."""
  if se == 0:
    return (d, d), (1.0 if d == 0 else 0.0)
  t = sps.t.ppf(1 - (1 - level) / 2, df)
  return (d - t * se, d + t * se), float(2 * sps.t.sf(abs(d / se), df))


def _welch(sa: float, na: int, sb: float, nb: int) -> tuple[float, float]:
  """(se, df) of a difference of two means by Welch-Satterthwaite."""
  va, vb = sa**2 / na, sb**2 / nb
  se = math.sqrt(va + vb)
  den = va**2 / (na - 1) + vb**2 / (nb - 1)
  return se, ((va + vb) ** 2 / den if den else math.inf)


def compare(a: Sample, b: Sample, alpha: float = 0.05) -> Comparison:
  """a - b: paired by run name when both hold the same runs, else Welch;
  seeds needed: the smallest n (pairs, or per group) at which the observed
  difference at the observed spread has p < alpha."""
  d = a.mean - b.mean
  pair = _paired(a, b)
  if pair is not None and len(pair[0]) > 1:
    diffs = pair[0] - pair[1]
    n, s = len(diffs), float(np.std(diffs, ddof=1))
    interval, p = _t_interval(float(diffs.mean()), s / math.sqrt(n), n - 1)

    def p_at(m):
      return _t_interval(d, s / math.sqrt(m), m - 1)[1]

  elif a.std is not None and b.std is not None:
    n = min(a.n, b.n)
    se, df = _welch(a.std, a.n, b.std, b.n)
    interval, p = _t_interval(d, se, df)

    def p_at(m):
      return _t_interval(d, *_welch(a.std, m, b.std, m))[1]

  else:
    return Comparison(d, None, None, pair is not None, min(a.n, b.n), None)
  needed = None
  if p >= alpha:
    needed = next((m for m in range(n + 1, MAX_SEEDS) if p_at(m) < alpha), None)
  return Comparison(d, interval, p, pair is not None, n, needed)


def holm(pvalues: list[float | None]) -> list[float | None]:
  """Holm-Bonferroni adjusted p-values (None stays None): the k-th smallest
  of m is multiplied by m - k + 1, then made monotone and capped at 1."""
  idx = sorted(
    (i for i, p in enumerate(pvalues) if p is not None),
    key=lambda i: pvalues[i],
  )
  out, running = list(pvalues), 0.0
  for k, i in enumerate(idx):
    running = max(running, min(1.0, (len(idx) - k) * pvalues[i]))
    out[i] = running
  return out


def compare_all(
  pairs: list[tuple[Sample, Sample]], alpha: float = 0.05
) -> list[Comparison]:
  """`compare` of each pair, with Holm's adjustment over all of them; the
  seeds needed are Bonferroni's (alpha over the number of pairs), which
  Holm's first step is."""
  found = [compare(a, b, alpha / max(len(pairs), 1)) for a, b in pairs]
  adjusted = holm([c.p for c in found])
  return [dataclasses.replace(c, p_holm=q) for c, q in zip(found, adjusted)]


SIGNS = {'higher': 1, 'lower': -1}


@dataclasses.dataclass(frozen=True)
class Claim:
  """A paper's qualitative finding, tested as `tested` (what a - b is)
  having the sign `sign` (SIGNS); an optional margin (metric units) and
  its reason; no budget (a finding states none)."""

  tested: str
  sign: int
  margin: float = 0.0
  reason: str = ''
  budget = None

  def __post_init__(self):
    if self.sign not in SIGNS.values():
      raise ValueError(f'sign {self.sign}: valid: {", ".join(SIGNS)}')
    if self.margin < 0 or (self.margin and not self.reason):
      raise ValueError('a margin is > 0 and states its reason')

  def text(self) -> str:
    """'fd: diffaugment - none < 0'."""
    return f'{self.tested} {"<" if self.sign < 0 else ">"} 0'


def claim_verdict(claim: Claim, c: Comparison, alpha: float = 0.05) -> Verdict:
  """The label of the module docstring for `claim` given `compare`'s
  a - b (computed at the same alpha)."""
  if c.interval is None:
    why = 'one run a side: no spread for an interval'
    return Verdict(c.difference, None, claim.margin, 'inconclusive', None, why)
  lo, hi = c.interval
  if c.p < alpha:
    agrees = claim.sign * c.difference > 0
    label = 'reproduced' if agrees else 'not reproduced'
  elif claim.margin and -claim.margin < lo and hi < claim.margin:
    label = 'not reproduced'
  else:
    label = 'inconclusive'
  seeds = c.seeds_needed if label == 'inconclusive' else None
  return Verdict(c.difference, c.interval, claim.margin, label, seeds)


def expected_best(scores, k: int, lower_is_better: bool = True) -> float:
  """E[best of k trials drawn with replacement from `scores`] (Dodge et al.
  2019): with v_1 <= ... <= v_N the scores sorted worst first,
  sum_i v_i ((i / N)^k - ((i - 1) / N)^k)."""
  v = np.sort(np.asarray(scores, np.float64))
  if lower_is_better:
    v = v[::-1]
  i = np.arange(1, len(v) + 1) / len(v)
  return float(np.sum(v * (i**k - (i - 1 / len(v)) ** k)))
