"""What a run writes as it trains: metrics (JSON lines + TensorBoard) and
pictures of samples (image grids, scatter plots of toy data)."""

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tensorboardX import SummaryWriter

from gan_jax import rundir


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
  fig = Figure(figsize=(4, 4), dpi=100)
  canvas = FigureCanvasAgg(fig)
  ax = fig.add_subplot()
  ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, label='G(z)')
  ax.scatter(
    centres[:, 0], centres[:, 1], s=30, c='red', marker='x', label='modes'
  )
  lim = 1.25 * np.abs(centres).max()
  ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect='equal', title=title)
  ax.legend(loc='upper right', fontsize=7)
  fig.tight_layout()
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def picture(samples: np.ndarray, dataset, source, cols: int, title: str):
  """The picture of samples G(z) (N, *shape): an image grid of `cols`
  columns, or for toy points a scatter plot over the mixture's centres
  (`source`, the dataset's loaded arrays)."""
  if dataset.kind == 'points':
    return scatter_plot(samples, np.asarray(source['centres']), title)
  return image_grid(samples, cols)


class MetricWriter:
  """Appends `{'step': s, **scalars}` to metrics.jsonl and TensorBoard.

  Only the process that should write (process 0) creates one; the others use
  `MetricWriter(None)`, which writes nothing. A cut last line left by a
  killed run is dropped first, and each row reaches the file as it is
  logged (rundir.open_jsonl), so a kill loses at most the row being written.
  """

  def __init__(self, workdir: str | None):
    self._jsonl = self._tb = None
    if workdir is not None:
      self._jsonl = rundir.open_jsonl(os.path.join(workdir, rundir.METRICS))
      self._tb = SummaryWriter(workdir)

  def scalars(self, step: int, scalars: dict) -> None:
    if self._jsonl is None:
      return
    row = {'step': int(step), **{k: float(v) for k, v in scalars.items()}}
    rundir.write_row(self._jsonl, row)
    for k, v in scalars.items():
      self._tb.add_scalar(k, float(v), int(step))

  def image(self, step: int, tag: str, grid: np.ndarray) -> None:
    if self._tb is not None:
      self._tb.add_image(tag, grid, int(step), dataformats='HWC')

  def close(self) -> None:
    """Closes metrics.jsonl and TensorBoard's writer, the latter even when
    the former fails (a full disk); raises the first failure."""
    if self._jsonl is None:
      return
    try:
      self._jsonl.close()
    finally:
      self._tb.close()
