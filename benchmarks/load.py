"""Timing benchmark calls, and the CPU other processes used meanwhile."""

import math
import os
import time


def busy_seconds():
  """CPU seconds used by all processes since boot (Linux), else None."""
  try:
    with open('/proc/stat') as f:
      ticks = [int(v) for v in f.readline().split()[1:9]]
  except (OSError, ValueError):
    return None
  # user nice system idle iowait irq softirq steal: all but idle and iowait.
  return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf('SC_CLK_TCK')


def timed(fn):
  """(seconds, background cores) of fn(): cores other processes used."""
  busy, own, t = busy_seconds(), sum(os.times()[:2]), time.perf_counter()
  fn()
  t = time.perf_counter() - t
  if busy is None:
    return t, math.nan
  other = busy_seconds() - busy - (sum(os.times()[:2]) - own)
  return t, max(0.0, other / t)


def measure(runners, repeats, max_background):
  """Alternating rounds of runners; ({name: [seconds]}, [load], dropped)."""
  times, loads, dropped = {k: [] for k in runners}, [], 0
  while len(loads) < repeats and len(loads) + dropped < 3 * repeats:
    round_times, load = {}, 0.0
    for name, run in runners.items():
      round_times[name], background = timed(run)
      load = max(load, background)
    if load > max_background:
      dropped += 1
      continue
    for name, t in round_times.items():
      times[name].append(t)
    loads.append(load)
  return times, loads, dropped
