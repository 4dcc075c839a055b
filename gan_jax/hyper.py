"""Sweeps over config fields, for an experiment file's `get_hyper(arg)`.

A sweep is a list of points; a point is a dict {dotted config field: value}:
  sweep('seed', range(3))            -> [{'seed': 0}, {'seed': 1}, {'seed': 2}]
  product([sweep('loss', ['minimax', 'hinge']), sweep('seed', range(2))])
      -> 4 points, the last sweep varying fastest
  zipit([sweep('optim.lr', [1e-4, 2e-4]), sweep('optim.b1', [0.5, 0.0])])
      -> 2 points, values paired in order
  fixed('num_steps', 5000)           -> [{'num_steps': 5000}]
"""

import itertools


def sweep(field: str, values) -> list[dict]:
  """One point per value of `field`."""
  return [{field: v} for v in values]


def fixed(field: str, value) -> list[dict]:
  """A single point setting `field` to `value` (for product/zipit)."""
  return [{field: value}]


def product(sweeps: list[list[dict]]) -> list[dict]:
  """Cartesian product; fields repeated across sweeps are an error."""
  points = [{}]
  for s in sweeps:
    points = [_merge(p, q) for p, q in itertools.product(points, s)]
  return points


def zipit(sweeps: list[list[dict]]) -> list[dict]:
  """Points paired in order; every sweep must have the same length."""
  lengths = {len(s) for s in sweeps}
  if len(lengths) > 1:
    raise ValueError(f'zipit needs sweeps of one length, got {sorted(lengths)}')
  points = [{} for _ in sweeps[0]] if sweeps else []
  for s in sweeps:
    points = [_merge(p, q) for p, q in zip(points, s)]
  return points


def _merge(p: dict, q: dict) -> dict:
  both = set(p) & set(q)
  if both:
    raise ValueError(f'a sweep sets {", ".join(sorted(both))} twice')
  return p | q
