"""What a run writes: metrics (JSON lines + TensorBoard) and image grids."""

import json
import os

import numpy as np
from PIL import Image


def image_grid(images: np.ndarray, cols: int = 8) -> np.ndarray:
  """(N, H, W, C) in [-1, 1] -> uint8 (rows*(H+1)+1, cols*(W+1)+1, C) grid."""
  n, h, w, c = images.shape
  rows = -(-n // cols)
  grid = np.zeros((rows * (h + 1) + 1, cols * (w + 1) + 1, c), np.uint8)
  pixels = np.clip(np.rint((images + 1.0) * 127.5), 0, 255).astype(np.uint8)
  for i, img in enumerate(pixels):
    r, q = divmod(i, cols)
    grid[
      1 + r * (h + 1) : 1 + r * (h + 1) + h,
      1 + q * (w + 1) : 1 + q * (w + 1) + w,
    ] = img
  return grid


def scatter_plot(points: np.ndarray, centres: np.ndarray, title: str):
  """2-D samples (N, 2) over the mixture's mode centres (K, 2) -> uint8 RGB."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use('Agg')
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
  ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, label='G(z)')
  ax.scatter(
    centres[:, 0], centres[:, 1], s=30, c='red', marker='x', label='modes'
  )
  lim = 1.25 * np.abs(centres).max()
  ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect='equal', title=title)
  ax.legend(loc='upper right', fontsize=7)
  fig.tight_layout()
  fig.canvas.draw()
  rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  plt.close(fig)
  return rgb


def save_png(path: str, grid: np.ndarray) -> None:
  """Writes a uint8 (H, W, 1 or 3) array as PNG, atomically."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  tmp = path + '.tmp'
  Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(
    tmp, format='PNG'
  )
  os.replace(tmp, path)


class MetricWriter:
  """Appends `{'step': s, **scalars}` to metrics.jsonl and TensorBoard.

  Only the process that should write (process 0) creates one; the others use
  `MetricWriter(None)`, which writes nothing.
  """

  def __init__(self, workdir: str | None):
    self._jsonl = self._tb = None
    if workdir is not None:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top

      self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a')
      self._tb = SummaryWriter(workdir)

  def scalars(self, step: int, scalars: dict) -> None:
    if self._jsonl is None:
      return
    row = {'step': int(step), **{k: float(v) for k, v in scalars.items()}}
    self._jsonl.write(json.dumps(row) + '\n')
    self._jsonl.flush()
    for k, v in scalars.items():
      self._tb.add_scalar(k, float(v), int(step))

  def image(self, step: int, tag: str, grid: np.ndarray) -> None:
    if self._tb is not None:
      self._tb.add_image(tag, grid, int(step), dataformats='HWC')

  def close(self) -> None:
    if self._jsonl is not None:
      self._jsonl.close()
      self._tb.close()
