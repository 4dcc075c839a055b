"""Generated tables of a markdown file (docs/results.md), from committed
records (gan_jax.report.records), so a number there cannot drift from them.

A table is a block between two markers; the first names its kind and
arguments (key=value, shell-quoted), e.g.

  <!-- table verdicts records=docs/results/mode_collapse/long_60k -->
  ...generated lines...
  <!-- /table -->

Kinds:
  verdicts records=DIR [step=S] [command=CMD]
      every paper row of DIR's reference.json beside our group it names
      (its 'where' against each group's config), by verdict.verdict
  finding records=DIR metric=M group=G (against=GROUP | against_metric=M2)
          sign=higher|lower claim=TEXT source=TEXT [step=S] [margin=X
          reason=TEXT] [command=CMD]
      a paper's qualitative finding, that M of G minus M of GROUP (or M2
      of G's runs) has the sign, by verdict.claim_verdict
  summary [pages=GLOB]
      every row of every verdicts and finding table of the file, with its
      section; with pages, also those of each page GLOB names (relative
      to the file's folder), with the page's title
  groups records=DIR metrics=M1,M2 [step=S] [real=1]
      per group, each metric's mean ± s.e. over runs (n); with real=1
      also the real-data rows of results.csv
  compare records=DIR metric=M (against=GROUP | against_metric=M2) [step=S]
      each other group against GROUP, or in each group M against M2 of the
      same runs (verdict.compare_all: paired by seed where the runs match,
      Holm over the table's rows)
  best_of records=DIR metric=M by=FIELD [trials=1,2,4] [higher=1]
      per value of the config FIELD, the expected best of k random trials
      among its runs (verdict.expected_best)
  curve records=DIR metric=M [every=K | steps=S1,S2] [digits=D]
      a row per evaluation step (every K-th, and the last; or the steps
      S1, S2, ...), a column per group: the mean over runs (± s.e. with
      several)
`render` rewrites every block; `check` names the blocks that differ.
"""

import dataclasses
import glob
import os
import re
import shlex

from gan_jax.errors import ReportError
from gan_jax.report import records as records_lib
from gan_jax.report import tables
from gan_jax.report import verdict as v

BLOCK = re.compile(
  r'(?P<open><!-- table (?P<spec>[^\n]*?) -->\n)(?P<body>.*?)'
  r'(?P<close><!-- /table -->)',
  re.DOTALL,
)
HEADING = re.compile(r'^## (.+)$', re.MULTILINE)
TITLE = re.compile(r'^# (.+)$', re.MULTILINE)


@dataclasses.dataclass
class Line:
  """One paper row's verdict, for its table and the summary; ours and the
  verdict are None where no group of the records is that setting."""

  source: str
  setting: str
  metric: str
  paper: v.Paper | v.Claim
  ours: v.Sample | None  # a Claim's: its group's sample of the metric
  step: int | None  # our updates: the step our values are read at
  verdict: v.Verdict | None
  command: str

  def cells(self, at: bool = True) -> tuple[str, str]:
    """(ours, verdict) as table cells; ours with the step it is read at."""
    if self.ours is None:
      return 'not run', 'not run'
    at = f' at {self.step:,}' if at and self.step else ''
    ours = self.ours.text()
    if isinstance(self.paper, v.Claim):
      ours = f'{self.verdict.interval_text()} (95 % CI, n = {self.ours.n})'
    return ours + at, self.verdict.text()


def _matches(config: dict, where: dict) -> bool:
  return all(str(config.get(k)) == str(x) for k, x in where.items())


def verdict_lines(recs, step=None, command='', strict=True) -> list[Line]:
  """The verdict of every metric of every paper row of the first of `recs`
  (Records) that has a reference, against the groups of all of them.

  strict (the docs): a row must match at most one group ('not run' when
  none); else (a sweep's report) a line per matching group, none for a row
  without one. Our budget is the step our values are read at."""
  ref = next((r.reference for r in recs if r.reference), None)
  if not ref:
    raise ReportError(f'{recs[0].path}: no {records_lib.REFERENCE}')
  lines = []
  for row in ref['rows']:
    where = row.get('where', {})
    found = [
      (rec, g)
      for rec in recs
      for g in rec.groups()
      if _matches(rec.configs.get(g, {}), where)
    ]
    label = row.get('label', '')
    if strict and len(found) > 1:
      raise ReportError(
        f'the paper row {label or where} matches {len(found)} groups '
        f'({", ".join(g for _, g in found)}); it must match one'
      )
    for metric, entry in row['metrics'].items():
      if not isinstance(entry, dict):
        continue  # a reference from before the rule: a bare number
      try:
        paper = v.Paper.of({**entry, 'budget': row.get('budget')})
      except (TypeError, ValueError) as e:
        raise ReportError(f'paper row {label} {metric}: {e}') from None
      if strict and not found:
        lines.append(
          Line(ref['source'], label, metric, paper, None, None, None, command)
        )
      for rec, group in found:
        ours, at = rec.at(group, metric, step)
        lines.append(
          Line(
            ref['source'],
            label if strict else group,
            metric,
            paper,
            ours,
            at,
            v.verdict(paper, ours, at),
            command,
          )
        )
  return lines


def verdict_table(lines: list[Line]) -> list[str]:
  """Markdown lines: the source, then a row per Line."""
  head = [
    'setting',
    'metric',
    'paper (± as stated)',
    'ours (mean ± s.e., n)',
    'ours − paper [95 % CI]',
    'margin',
    'verdict',
  ]
  body = []
  for ln in lines:
    ours, said = ln.cells()
    body.append(
      [
        ln.setting,
        ln.metric,
        ln.paper.text(),
        ours,
        '' if ln.verdict is None else ln.verdict.interval_text(),
        f'{v.fmt(ln.paper.margin, 3)}: {ln.paper.reason}',
        said,
      ]
    )
  return [
    f'Source: {lines[0].source}.' if lines else '',
    '',
    *tables.md_table(head, body),
  ]


def _summary(found: list[tuple[str, Line]]) -> list[str]:
  head = [
    'study',
    'paper row',
    'metric',
    'paper',
    'ours (mean ± s.e., n; a finding: its difference [95 % CI])',
    "our budget / paper's (updates)",
    'verdict',
    'command',
  ]
  body = []
  for section, ln in found:
    budget = f'{ln.step:,}' if ln.step else '—'
    if ln.paper.budget:
      budget += f' / {ln.paper.budget:,.0f}'
    ours, said = ln.cells(at=False)
    body.append(
      [
        section,
        f'{ln.source}: {ln.setting}',
        ln.metric,
        ln.paper.text(),
        ours,
        budget,
        said,
        f'`{ln.command}`' if ln.command else '',
      ]
    )
  return tables.md_table(head, body)


def _finding(rec, args) -> tuple[Line, list[str]]:
  """A finding block's Line (for the summary) and table."""
  metric, group = args['metric'], args['group']
  a, at = rec.at(group, metric, _step_arg(args))
  if 'against_metric' in args:
    base = args['against_metric']
    b, tested = rec.sample(group, base, at), f'{metric} − {base} of {group}'
  else:
    base = args['against']
    b, tested = rec.sample(base, metric, at), f'{metric}: {group} − {base}'
  if args['sign'] not in v.SIGNS:
    raise ReportError(
      f'finding {args["claim"]!r}: sign={args["sign"]!r}: valid: '
      f'{", ".join(v.SIGNS)}'
    )
  try:
    claim = v.Claim(
      tested,
      v.SIGNS[args['sign']],
      float(args.get('margin', 0)),
      args.get('reason', ''),
    )
  except ValueError as e:
    raise ReportError(f'finding {args["claim"]!r}: {e}') from None
  c = v.compare(a, b)
  said = v.claim_verdict(claim, c)
  line = Line(
    args['source'],
    args['claim'],
    metric,
    claim,
    a,
    at,
    said,
    args.get('command', ''),
  )
  head = [
    'finding',
    'tested as',
    'ours [95 % CI]',
    'test',
    'p',
    'verdict (p < 0.05)',
  ]
  test = f'paired t ({c.n} seeds)' if c.paired else 'Welch t'
  row = [
    f'{line.source}: {line.setting}',
    claim.text(),
    f'{said.interval_text()} at {at:,}',
    test if c.interval is not None else '',
    '' if c.p is None else f'{c.p:.2g}',
    said.text(),
  ]
  return line, tables.md_table(head, [row])


def _step_arg(args: dict) -> int | None:
  return int(args['step']) if 'step' in args else None


def _groups(rec, args) -> list[str]:
  metrics = args['metrics'].split(',')
  head = ['group'] + [f'{tables.header(m)}: mean ± s.e., n' for m in metrics]
  body = [
    [g]
    + [
      rec.sample(g, m, _step_arg(args)).text() if rec.has(g, m) else ''
      for m in metrics
    ]
    for g in rec.groups()
  ]
  if args.get('real') == '1':
    body += [
      [label] + [v.fmt(row[m]) if m in row else '' for m in metrics]
      for label, row in rec.real.items()
    ]
  return tables.md_table(head, body)


def _compare(rec, args) -> list[str]:
  metric, step = args['metric'], _step_arg(args)
  if 'against_metric' in args:  # two metrics of the same runs, per group
    base = args['against_metric']
    others = rec.groups()
    pairs = [
      (rec.sample(g, metric, step), rec.sample(g, base, step)) for g in others
    ]
    title = []
  else:
    base = args['against']
    if base not in rec.groups():
      raise ReportError(
        f'{rec.path}: against={base!r} is no group; groups: '
        f'{", ".join(rec.groups())}'
      )
    others = [g for g in rec.groups() if g != base]
    b = rec.sample(base, metric, step)
    pairs = [(rec.sample(g, metric, step), b) for g in others]
    title = [f'{base}: {b.text()}', '']
  return [*title, *compare_table(metric, base, others, pairs)]


def compare_table(
  metric: str, base: str, others: list[str], pairs
) -> list[str]:
  """Markdown lines: each of `others` (a, b) in `pairs` as a − b by
  verdict.compare_all (Holm over the rows), b being `base`."""
  found = v.compare_all(pairs)
  head = [
    'group',
    f'{tables.header(metric)}: mean ± s.e., n',
    f'− {base} [95 % CI]',
    'test',
    'p',
    'Holm p',
    'reading (Holm p < 0.05)',
  ]
  body = []
  for g, (a, _), c in zip(others, pairs, found):
    if c.interval is None:
      body.append(
        [g, a.text(), v.fmt(c.difference, 3), '', '', '', 'no spread']
      )
      continue
    lo, hi = c.interval
    if c.p_holm < 0.05:
      reading = 'differs'
    elif c.seeds_needed:
      reading = (
        f'not resolved; {c.seeds_needed} seeds a group would resolve this d'
      )
    else:
      reading = 'not resolved'
    body.append(
      [
        g,
        a.text(),
        f'{v.fmt(c.difference, 3)} [{v.fmt(lo, 3)}, {v.fmt(hi, 3)}]',
        f'paired t ({c.n} seeds)' if c.paired else 'Welch t',
        f'{c.p:.2g}',
        f'{c.p_holm:.2g}',
        reading,
      ]
    )
  return tables.md_table(head, body)


def _best_of(rec, args) -> list[str]:
  metric, field = args['metric'], args['by']
  trials = [int(k) for k in args.get('trials', '1,2,4').split(',')]
  lower = args.get('higher', '0') != '1'
  by = {}
  for g in rec.groups():
    value = rec.configs.get(g, {}).get(field)
    by.setdefault(str(value), []).extend(rec.sample(g, metric).values)
  head = [field, 'trials'] + [f'best of {k}' for k in trials]
  body = [
    [name, str(len(s))]
    + [v.fmt(v.expected_best(s, k, lower), 4) for k in trials]
    for name, s in by.items()
  ]
  return tables.md_table(head, body)


def _curve(rec, args) -> list[str]:
  metric = args['metric']
  every = int(args.get('every', 1))
  digits = int(args.get('digits', 4))
  groups = [g for g in rec.groups() if metric in rec.curves.get(g, {})]
  have = {g: set(rec.steps(g, metric)) for g in groups}
  steps = sorted(set().union(*have.values()))
  keep = steps[::every] + ([steps[-1]] if (len(steps) - 1) % every else [])
  if 'steps' in args:
    keep = [int(s) for s in args['steps'].split(',')]
  head = [f'step \\ {tables.header(metric)}'] + [
    f'{g}: mean ± s.e. (n)' for g in groups
  ]
  body = []
  for s in keep:
    cells = [f'{s:,}']
    for g in groups:
      if s not in have[g]:
        cells.append('')
        continue
      x = rec.sample(g, metric, s)
      cells.append(
        v.fmt(x.mean, digits)
        if x.se is None
        else f'{v.fmt(x.mean, digits)} ± {v.fmt(x.se, 2)} ({x.n})'
      )
    body.append(cells)
  return tables.md_table(head, body)


TABLES = {
  'groups': _groups,
  'compare': _compare,
  'best_of': _best_of,
  'curve': _curve,
}
KINDS = ('verdicts', 'finding', 'summary', *TABLES)


def _parse(spec: str) -> tuple[str, dict]:
  kind, *rest = shlex.split(spec)
  if kind not in KINDS:
    raise ReportError(f'table kind {kind!r}: valid: {", ".join(KINDS)}')
  bad = [a for a in rest if '=' not in a]
  if bad:
    raise ReportError(f'table {spec!r}: arguments are key=value, not {bad}')
  args = dict(a.split('=', 1) for a in rest)
  if kind not in ('summary',) and 'records' not in args:
    raise ReportError(f'table {spec!r}: needs records=DIR')
  return kind, args


def _lines(text: str, root: str) -> tuple[list, dict]:
  """([(section, Line)] of the verdicts and finding blocks of `text`, the
  body of each block but the summaries by its offset)."""
  cache = {}

  def rec_of(args):
    path = f'{root}/{args["records"]}'
    if path not in cache:
      cache[path] = records_lib.load(path)
    return cache[path]

  found, bodies = [], {}
  for m in BLOCK.finditer(text):
    kind, args = _parse(m['spec'])
    try:
      found += _render(m, kind, args, text, rec_of, bodies)
    except KeyError as e:
      raise ReportError(f'table {m["spec"]!r}: needs {e.args[0]}=') from None
  return found, bodies


def _page_lines(pattern: str, root: str) -> list:
  """The (section, Line)s of each page `pattern` names, the section its
  title linked to the page."""
  found = []
  for path in sorted(glob.glob(os.path.join(root, pattern))):
    with open(path) as f:
      text = f.read()
    title = TITLE.search(text)
    rel = os.path.relpath(path, root)
    link = f'[{title[1] if title else rel}]({rel})'
    found += [(link, ln) for _, ln in _lines(text, os.path.dirname(path))[0]]
  return found


def render(text: str, root: str = '.') -> str:
  """`text` with every generated block rewritten from its records (paths
  relative to `root`)."""
  found, bodies = _lines(text, root)
  for m in BLOCK.finditer(text):
    if m.start() not in bodies:
      pages = _parse(m['spec'])[1].get('pages')
      bodies[m.start()] = _summary(
        found + (_page_lines(pages, root) if pages else [])
      )

  def sub(m):
    return m['open'] + '\n'.join(bodies[m.start()]) + '\n' + m['close']

  return BLOCK.sub(sub, text)


def _render(m, kind, args, text, rec_of, bodies) -> list:
  """Fills bodies[m.start()] for one block but a summary; returns its
  (section, Line)s for the summary."""
  sections = HEADING.findall(text[: m.start()])
  section = sections[-1] if sections else ''
  if kind == 'verdicts':
    recs = [rec_of({'records': p}) for p in args['records'].split(',')]
    lines = verdict_lines(recs, _step_arg(args), args.get('command', ''))
    bodies[m.start()] = verdict_table(lines)
    return [(section, ln) for ln in lines]
  if kind == 'finding':
    line, bodies[m.start()] = _finding(rec_of(args), args)
    return [(section, line)]
  if kind != 'summary':
    bodies[m.start()] = TABLES[kind](rec_of(args), args)
  return []


def check(text: str, root: str = '.') -> list[str]:
  """The specs of the blocks whose text differs from what their records
  give, with their line numbers."""
  fresh = {m['spec']: m['body'] for m in BLOCK.finditer(render(text, root))}
  return [
    f'line {text[: m.start()].count(chr(10)) + 1}: table {m["spec"]}'
    for m in BLOCK.finditer(text)
    if fresh.get(m['spec']) != m['body']
  ]
