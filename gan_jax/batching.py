"""Functions over many rows in fixed-size blocks, so they compile once."""

import jax
import numpy as np


def batched(fn, arrays, batch: int):
  """fn(*blocks) over row blocks of `arrays` (each (N, ...)), the last block
  zero-padded to `batch` rows; returns fn's outputs (a pytree of arrays with
  leading axis N) as numpy, the padding rows dropped."""
  n = len(arrays[0])
  outs = []
  for i in range(0, n, batch):
    blocks = [np.asarray(x[i : i + batch]) for x in arrays]
    k = len(blocks[0])
    padded = [
      np.pad(b, ((0, batch - k),) + ((0, 0),) * (b.ndim - 1)) for b in blocks
    ]
    res = fn(*padded)
    outs.append(jax.tree.map(lambda a, k=k: np.asarray(a)[:k], res))
  return jax.tree.map(lambda *a: np.concatenate(a), *outs)
