"""The prepared accelerator check runs end to end in its smoke mode."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_accelerator_check_smoke_writes_every_section(mnist_dirs, tmp_path):
  manual_dir, data_dir = mnist_dirs
  out = tmp_path / 'check.md'
  r = subprocess.run(
    [
      sys.executable,
      '-m',
      'benchmarks.accelerator',
      '--smoke',
      f'--manual_dir={manual_dir}',
      f'--data_dir={data_dir}',
      f'--out={out}',
    ],
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  text = out.read_text()
  assert "`conv: auto` resolves to 'gemm' here" in text
  for heading in (
    '## 1. MNIST DCGAN train step',
    '## 2. 2 models vmapped',
    '## 3. Ring MLP GAN: iterations per dispatch',
    '## 4. The main job',
    '## 5. The reproductions at their full protocols',
  ):
    assert heading in text, text
  rows = [l for l in text.splitlines() if l.startswith('| 16 | float32 |')]
  assert len(rows) == 1  # images/s of both conv forms, measured
  gemm, xla = (float(c.split()[0]) for c in rows[0].split('|')[3:5])
  assert gemm > 0 and xla > 0
  assert '20 updates at batch 16' in text and 'restoring the checkpoint' in text
  assert 'Skipped' not in text
  studies = [l for l in text.splitlines() if l.startswith(('| Good', '| Pac'))]
  assert len(studies) == 3  # Goodfellow, PacGAN m = 1 and 2 (smoke)
  assert all(float(l.split('|')[-2]) > 0 for l in studies)  # hours
  assert 'The PacGAN sweep in all' in text
