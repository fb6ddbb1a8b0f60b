"""The ``fastnn`` command line: one-line errors with status 2, and each command runs."""

import os
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

from fastnn import backends
from fastnn.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("argv", [
    [],
    ["nope"],
    ["train", "--iterations", "-3"],
    ["train", "--iterations", "ten"],
    ["train", "--learning-rate", "0"],
    ["train", "--layers", "2,x,1"],
    ["train", "--layers", "3,4,1"],          # planar has 2 features
    ["train", "--dataset", "mnist"],
    ["train", "--backend", "fortran", "--iterations", "1"],
    ["train", "--activation", "swish", "--iterations", "1"],
    ["report", "--from-json", "/no/such/file.json"],
    ["bench", "--fast"],
])
def test_bad_arguments_give_one_line_and_status_2(argv, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("fastnn: error: ")
    assert "Traceback" not in captured.err + captured.out


def test_bad_arguments_through_the_console_entry_point():
    proc = subprocess.run([sys.executable, "-m", "fastnn", "train", "--layers", "2,0,1"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--layers" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_backends_lists_every_backend():
    proc = subprocess.run([sys.executable, "-m", "fastnn", "backends"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    for name in backends.names():
        assert name in proc.stdout


def test_train_prints_costs_accuracy_time_and_plots(tmp_path, capsys):
    png = tmp_path / "boundary.png"
    assert main(["train", "--iterations", "60", "--cost-every", "20", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    for i in (0, 20, 40):
        assert f"Cost after iteration {i}:" in out
    assert "accuracy on the training set" in out and "time per iteration" in out
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_flower_runs_every_available_backend_and_slow_rungs_match_numpy(capsys):
    assert main(["flower", "--iterations", "30"]) == 0
    out = capsys.readouterr().out
    for name, ok in backends.available().items():
        assert name in out
    # Only rungs that ran fewer iterations than asked get a note; here none did.
    assert "relative difference" not in out


def test_flower_slow_rungs_are_checked_against_numpy(capsys, monkeypatch):
    import fastnn.cli as cli

    monkeypatch.setattr(cli, "FLOWER_SLOW", {"loops": 10, "per_example": 10})
    assert main(["flower", "--iterations", "30"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    diffs = [float(part.rstrip(")")) for part in out.split("relative difference ")[1:]
             for part in [part.split()[0]]]
    assert len(diffs) == 2
    assert np.all(np.array(diffs) <= 1e-12)
