"""The package's structure: no import cycles, and a report without JAX.

The import graph counts every import of a gan_jax module, function-local
ones included, read from the source with `ast` (nothing is imported).
"""

import ast
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def _module(path: pathlib.Path) -> str:
  parts = path.relative_to(REPO).with_suffix('').parts
  return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(path: pathlib.Path, modules: set[str]) -> set[str]:
  """The gan_jax modules `path` imports (`from gan_jax import x` is x)."""
  out = set()
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
      names = [f'{node.module}.{a.name}' for a in node.names] + [node.module]
    else:
      continue
    out |= {n for n in names if n in modules}
  return out


def import_graph() -> dict[str, set[str]]:
  files = sorted((REPO / 'gan_jax').rglob('*.py'))
  modules = {_module(f) for f in files}
  graph = {_module(f): _imports(f, modules) for f in files}
  for name, deps in graph.items():  # a package's own __init__ is no edge
    deps.discard(name)
    deps -= {p for p in modules if name.startswith(p + '.')}
  return graph


def _cycle(graph):
  """One import cycle as a list of modules, or None (depth-first search)."""
  state = {}

  def visit(node, path):
    state[node] = 'open'
    for dep in sorted(graph[node]):
      if state.get(dep) == 'open':
        return path[path.index(dep) :] + [dep]
      if dep not in state and (found := visit(dep, path + [dep])):
        return found
    state[node] = 'done'
    return None

  for node in sorted(graph):
    if node not in state and (found := visit(node, [node])):
      return found
  return None


def test_the_import_graph_finds_a_planted_cycle():
  assert _cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']
  assert _cycle({'a': {'b'}, 'b': set()}) is None


def test_no_import_cycle_among_gan_jax_modules():
  graph = import_graph()
  assert 'gan_jax.errors' in graph and not graph['gan_jax.errors']
  assert _cycle(graph) is None, ' -> '.join(_cycle(graph))


def test_the_report_imports_neither_jax_nor_orbax():
  code = (
    'import sys, gan_jax.report, gan_jax.report.command; '
    "bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'orbax')]; "
    'assert not bad, bad'
  )
  out = subprocess.run(
    [sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True
  )
  assert out.returncode == 0, out.stderr
