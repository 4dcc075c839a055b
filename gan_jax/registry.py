"""Named registries of what a config names: objectives, model families,
update schemes, metrics and feature networks.

A leaf module (no JAX). The package registers its built-in entries where it
defines them; a researcher's own file, anywhere, adds entries with the same
call, e.g. in an experiment file (having imported gan_jax's losses):

  losses.LOSSES.register('my_loss', losses.Loss(my_d_loss, my_g_loss))

or as a decorator (`@models.MODELS.register('my_mlp')`). A registered entry
is validated and used like a built-in one. Each entry remembers the file
that registered it; a run writes the files of the entries its config names
to its run directory (`registered.json`), and every later process that
rebuilds the run (resume, gan_jax.evaluate, gan_jax.sample) imports those
files first (`import_files`). The file must therefore stay where it was
(or be restored there) for as long as its runs are used.
"""

import collections.abc
import hashlib
import importlib
import importlib.util
import os
import sys

from gan_jax.errors import ConfigError, check_name

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
ALL: dict[str, 'Registry'] = {}  # kind -> its registry


class Registry(collections.abc.Mapping):
  """name -> entry of one `kind` ('loss', 'model', ...), read as a dict."""

  def __init__(self, kind: str):
    self.kind = kind
    self._entries, self._files = {}, {}
    ALL[kind] = self

  def register(self, name: str, entry=None):
    """Adds `entry` under `name` (or, without `entry`, decorates it).

    Registering again from the same file replaces the entry (a file
    imported twice); a name taken by another file is a ConfigError.
    """
    file = os.path.abspath(sys._getframe(1).f_code.co_filename)  # noqa: SLF001
    if entry is None:
      return lambda e: self._add(name, e, file)
    return self._add(name, entry, file)

  def _add(self, name: str, entry, file: str):
    if not isinstance(name, str) or not name:
      raise ConfigError(
        f'a {self.kind} is registered under a name, got {name!r}'
      )
    old = self._files.get(name)
    if old is not None and old != file:
      where = 'built in' if _builtin(old) else f'registered by {old}'
      raise ConfigError(
        f'{self.kind} {name!r} is {where}; register yours under another name.'
      )
    self._entries[name], self._files[name] = entry, file
    return entry

  def __getitem__(self, name: str):
    check_name(self.kind, name, self._entries)
    return self._entries[name]

  def __contains__(self, name) -> bool:
    return name in self._entries

  def __iter__(self):
    return iter(self._entries)

  def __len__(self) -> int:
    return len(self._entries)

  def origin(self, name: str) -> str | None:
    """The file that registered `name`; None for the package's own."""
    file = self._files[name]
    return None if _builtin(file) else file


def resolve(ref):
  """`ref` itself, or the object at its 'module:attribute' path (an entry's
  parts that need JAX are named so, keeping the registries JAX-free)."""
  if not isinstance(ref, str):
    return ref
  module, _, attr = ref.partition(':')
  return getattr(importlib.import_module(module), attr)


def _builtin(file: str) -> bool:
  return os.path.commonpath([file, _PACKAGE]) == _PACKAGE


def origins(used: dict[str, list[str]]) -> dict[str, dict[str, str]]:
  """{kind: {name: file}} of the entries in `used` ({kind: names}) that a
  file outside the package registered: what a later process imports."""
  out = {}
  for kind, names in used.items():
    files = {n: ALL[kind].origin(n) for n in names if n in ALL[kind]}
    files = {n: f for n, f in files.items() if f}
    if files:
      out[kind] = files
  return out


def import_files(record: dict[str, dict[str, str]]) -> None:
  """Imports the files of `origins`' record, then checks that each entry it
  names is registered; ConfigError naming the missing file otherwise."""
  for kind, entries in record.items():
    for name, file in entries.items():
      known = ALL.get(kind, {})
      if name in known and known.origin(name) == file:
        continue
      if not os.path.exists(file):
        raise ConfigError(
          f'this run uses {kind} {name!r}, registered by {file}, which is '
          'missing: put that file back where it was to use the run.'
        )
      _import(file)
      if name not in ALL.get(kind, {}):
        raise ConfigError(
          f'{file} no longer registers {kind} {name!r}, which this run uses: '
          'restore its registration to use the run.'
        )


def importable(file: str) -> None:
  """Puts `file`'s folder on sys.path, so that it imports its neighbours."""
  folder = os.path.dirname(os.path.abspath(file))
  if folder not in sys.path:
    sys.path.append(folder)


def _import(file: str) -> None:
  """Executes `file` as a module of its own (its folder importable)."""
  importable(file)
  digest = hashlib.sha1(file.encode()).hexdigest()[:12]
  spec = importlib.util.spec_from_file_location(f'_gan_jax_user_{digest}', file)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
