"""Network files: save/load agree on names, and every bad file is a ValueError
naming the file and what is wrong -- never a hint toward unpickling."""

import zipfile

import numpy as np
import pytest

import fastnn


@pytest.fixture
def content(tmp_path):
    """The arrays of a good network file, to spoil one at a time."""
    path = fastnn.Network([3, 4, 1], seed=0).save(tmp_path / "good.npz")
    with np.load(path) as data:
        return dict(data)


def test_save_appends_npz_and_load_finds_it(tmp_path):
    net = fastnn.Network([3, 4, 1], ["tanh", "sigmoid"], seed=0)
    written = net.save(tmp_path / "model")
    assert written == tmp_path / "model.npz" and written.is_file()
    for name in (tmp_path / "model", tmp_path / "model.npz", str(tmp_path / "model")):
        np.testing.assert_array_equal(fastnn.load(name).params["W1"], net.params["W1"])
    assert net.save(tmp_path / "again.npz") == tmp_path / "again.npz"


@pytest.mark.parametrize("g0", [1, 0])
def test_relu_grad_at_zero_and_softmax_round_trip(tmp_path, g0):
    net = fastnn.Network([3, 4, 3], output_activation="softmax", seed=0, relu_grad_at_zero=g0)
    back = fastnn.load(net.save(tmp_path / "model"))
    assert back.relu_grad_at_zero == g0 and repr(back) == repr(net)


def test_format_1_files_load_with_the_lecture_convention(tmp_path, content):
    # Written before relu_grad_at_zero existed: the lecture's g'(0) = 1.
    old = {k: v for k, v in content.items() if k != "relu_grad_at_zero"}
    np.savez(tmp_path / "old.npz", **{**old, "format_version": np.int64(1)})
    assert fastnn.load(tmp_path / "old.npz").relu_grad_at_zero == 1


def test_format_2_files_load_on_numpy_as_before(tmp_path, content):
    # Written before files named their backend: the default of those versions.
    assert fastnn.load(_format_2(tmp_path, content)).backend == "numpy"


def test_missing_file_names_both_candidates(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"neither .*nothing nor .*nothing\.npz exists"):
        fastnn.load(tmp_path / "nothing")


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


def _truncated(tmp_path, content):
    whole = fastnn.Network([30, 40, 1], seed=0).save(tmp_path / "whole.npz").read_bytes()
    return _write_bytes(tmp_path / "cut.npz", whole[: len(whole) // 2])


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _npz(tmp_path, name, **arrays):
    np.savez(tmp_path / name, **arrays)
    return tmp_path / name


def _format_2(tmp_path, content, without=None):
    """``content`` as format 2 wrote it (no backend entry), less ``without``."""
    old = {k: v for k, v in content.items() if k not in ("backend", without)}
    return _npz(tmp_path, "two.npz", **{**old, "format_version": np.int64(2)})


# (case, builder(tmp_path, content) -> path, message fragment)
BAD_FILES = [
    ("plain-text", lambda t, c: _write_bytes(t / "notes.npz", b"W1 = [[1, 2]]\n"),
     "not an .npz"),
    ("empty", lambda t, c: _write_bytes(t / "empty.npz", b""), "the file is empty"),
    ("directory", lambda t, c: (t / "folder").mkdir() or t / "folder", "it is a directory"),
    ("not-npy-member", lambda t, c: _zip(t / "m.npz", {"W1": b"text"}),
     "entry 'W1' is not a NumPy array"),
    ("bad-npy-member", lambda t, c: _zip(t / "m.npz", {"W1.npy": b"\x93NUMPY garbage"}),
     "entry 'W1' cannot be read"),
    ("truncated", _truncated, "truncated or corrupt"),
    ("npy", lambda t, c: (np.save(t / "one.npy", np.ones(3)), t / "one.npy")[1],
     "single .npy array"),
    ("empty-zip", lambda t, c: (zipfile.ZipFile(t / "z.npz", "w").close(), t / "z.npz")[1],
     r"missing \['format_version'"),
    ("no-meta", lambda t, c: _npz(t, "m.npz", W1=c["W1"]), r"missing \['format_version'"),
    ("version-text", lambda t, c: _npz(t, "v.npz", **{**c, "format_version": "one"}),
     "format_version must be one integer"),
    ("version-array", lambda t, c: _npz(t, "v.npz", **{**c, "format_version": [1, 1]}),
     "format_version must be one integer"),
    ("version-float", lambda t, c: _npz(t, "v.npz", **{**c, "format_version": 1.5}),
     "format_version must be one integer"),
    ("version-future", lambda t, c: _npz(t, "v.npz", **{**c, "format_version": 99}),
     "format_version 99"),
    ("convention-missing", lambda t, c: _format_2(t, c, without="relu_grad_at_zero"),
     r"missing \['relu_grad_at_zero'\], which format 2 has"),
    ("backend-missing", lambda t, c: _npz(t, "b.npz", **{
        k: v for k, v in c.items() if k != "backend"}), r"missing \['backend'\], which format 3 has"),
    ("backend-array", lambda t, c: _npz(t, "b.npz", **{**c, "backend": ["numpy", "numba"]}),
     "backend must be one string"),
    ("convention-text", lambda t, c: _npz(t, "g.npz", **{**c, "relu_grad_at_zero": "one"}),
     "relu_grad_at_zero must be one integer"),
    ("convention-2", lambda t, c: _npz(t, "g.npz", **{**c, "relu_grad_at_zero": 2}),
     "relu_grad_at_zero must be 1"),
    ("activations-number", lambda t, c: _npz(t, "a.npz", **{**c, "activations": [1, 2]}),
     "activations must be a 1-D array of strings"),
    ("activations-scalar", lambda t, c: _npz(t, "a.npz", **{**c, "activations": "relu"}),
     "activations must be a 1-D array of strings"),
    ("activations-unknown", lambda t, c: _npz(t, "a.npz", **{**c, "activations":
                                                              ["relu", "swish"]}),
     r"unknown activations\[1\] 'swish'"),
    ("activations-count", lambda t, c: _npz(t, "a.npz", **{**c, "activations": ["relu"]}),
     r"one name per layer \(2\)"),
    ("loss-number", lambda t, c: _npz(t, "l.npz", **{**c, "loss": 3}), "loss must be one string"),
    ("loss-unknown", lambda t, c: _npz(t, "l.npz", **{**c, "loss": "hinge"}),
     "unknown loss 'hinge'"),
    ("dtype-list", lambda t, c: _npz(t, "d.npz", **{**c, "dtype": ["float64"]}),
     "dtype must be one string"),
    ("dtype-unknown", lambda t, c: _npz(t, "d.npz", **{**c, "dtype": "float16"}),
     "dtype must be one of"),
    ("params-missing", lambda t, c: _npz(t, "p.npz", **{k: v for k, v in c.items()
                                                         if k != "W2"}), r"missing \['W2'\]"),
    ("params-none", lambda t, c: _npz(t, "p.npz", **{
        k: v for k, v in c.items() if not (k[0] in "Wb" and k[1:].isdigit())}),
     "at least W1 and b1"),
    ("params-shape", lambda t, c: _npz(t, "p.npz", **{**c, "b2": np.zeros((2, 1))}),
     r"params\['b2'\] must have shape \(1, 1\)"),
    ("params-text", lambda t, c: _npz(t, "p.npz", **{**c, "W1": np.full((4, 3), "x")}),
     r"params\['W1'\] must be a real numeric"),
    ("params-nan", lambda t, c: _npz(t, "p.npz", **{**c, "W1": np.full((4, 3), np.nan)}),
     r"params\['W1'\] must be finite"),
    ("object-array", lambda t, c: _npz(t, "o.npz", **{**c, "W1": np.array([None, 1],
                                                                           dtype=object)}),
     "entry 'W1' holds Python objects"),
]


@pytest.mark.parametrize("case,build,match", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_every_bad_file_is_a_value_error_naming_it(tmp_path, content, case, build, match):
    path = build(tmp_path, content)
    with pytest.raises(ValueError, match=match) as info:
        fastnn.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "pickle" not in message.lower()


def test_argument_errors_are_not_blamed_on_the_file(tmp_path):
    path = fastnn.Network([3, 4, 1], seed=0).save(tmp_path / "good")
    with pytest.raises(ValueError, match="unknown backend 'tensorflow'"):
        fastnn.load(path, backend="tensorflow")
    with pytest.raises(ValueError, match="threads must be a positive int"):
        fastnn.load(path, threads=0)
