import math
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.serialization import (
    ARTIFACT_KINDS,
    ArtifactError,
    PickleNotAllowedError,
    deserialize,
    extract_zip,
    file_size,
    safe_filename,
    serialize,
)


class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)


class MarkerOnLoad:
    """Unpickling this creates a marker file: proves whether pickle.load ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def roundtrip(name, obj, tmp_path, **kwargs):
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    ser = serialize(name, obj, workdir)
    assert ser.kind in ARTIFACT_KINDS
    assert ser.filename == os.path.basename(ser.filename)
    assert ser.path.exists()
    return ser, deserialize(ser.kind, ser.path, **kwargs)


def test_numpy_float_with_nan_inf(tmp_path):
    arr = np.array([[1.5, np.nan], [np.inf, -np.inf], [0.0, -2.25]])
    ser, out = roundtrip("arr", arr, tmp_path)
    assert ser.kind == "numpy" and ser.filename == "arr.npz"
    assert ser.preview.startswith("ndarray shape=(3, 2) dtype=float64")
    assert len(ser.preview) <= 300
    assert ser.metadata == {"shape": [3, 2], "dtype": "float64"}
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, arr)


def test_numpy_int_large(tmp_path):
    arr = np.arange(150 * 4, dtype=np.int64).reshape(150, 4)
    ser, out = roundtrip("iris", arr, tmp_path)
    assert ser.kind == "numpy" and len(ser.preview) <= 300
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, arr)


def test_numpy_object_dtype_is_pickle(tmp_path):
    arr = np.array([{"a": 1}, None], dtype=object)
    ser, out = roundtrip("objs", arr, tmp_path, allow_pickle=True)
    assert ser.kind == "pickle" and ser.filename == "objs.pkl"
    assert out.dtype == object and out[0] == {"a": 1} and out[1] is None


def test_dataframe_mixed_dtypes_roundtrip(tmp_path):
    df = pd.DataFrame(
        {
            "i": [1, 2, 3],
            "f": [1.5, np.nan, -np.inf],
            "s": ["x", None, "ü"],
            "b": [True, False, True],
            "t": pd.to_datetime(["2020-01-01", "2021-06-30", "2022-12-31"]),
            "c": pd.Categorical(["u", "v", "u"]),
        },
        index=pd.Index(["r1", "r2", "r3"], name="rid"),
    )
    ser, out = roundtrip("frame", df, tmp_path)
    assert ser.kind == "pandas" and ser.filename == "frame.parquet"
    assert ser.metadata["format"] == "parquet"
    assert ser.metadata["shape"] == [3, 6]
    assert ser.metadata["columns"] == ["i", "f", "s", "b", "t", "c"]
    assert ser.preview.startswith("DataFrame shape=(3, 6)") and len(ser.preview) <= 1000
    pd.testing.assert_frame_equal(out, df)


@pytest.mark.parametrize(
    "index",
    [
        pd.RangeIndex(3),
        pd.Index([10, 20, 30]),
        pd.date_range("2024-01-01", periods=3, freq="D", name="day"),
        pd.MultiIndex.from_tuples([("a", 1), ("a", 2), ("b", 1)], names=["k", "n"]),
    ],
)
def test_dataframe_index_kinds(tmp_path, index):
    df = pd.DataFrame({"v": [0.1, 0.2, 0.3], 7: [1, 2, 3]}, index=index)
    df.columns = ["v", "w"]
    _, out = roundtrip("df", df, tmp_path)
    pd.testing.assert_frame_equal(out, df)


def test_dataframe_integer_column_names(tmp_path):
    df = pd.DataFrame(np.arange(6.0).reshape(3, 2))
    _, out = roundtrip("df", df, tmp_path)
    pd.testing.assert_frame_equal(out, df)


def test_a_series_reads_back_as_the_series_it_was(tmp_path):
    ser, out = roundtrip("s", pd.Series([1, 2, 3], name="vals"), tmp_path)
    assert ser.kind == "pandas"
    pd.testing.assert_series_equal(out, pd.Series([1, 2, 3], name="vals"))
    _, unnamed = roundtrip("u", pd.Series([0.5, 1.5], index=[7, 9]), tmp_path)
    pd.testing.assert_series_equal(unnamed, pd.Series([0.5, 1.5], index=[7, 9]))


def test_numbers_are_json_not_pickle(tmp_path):
    for value in (3, 2.5, True, None, np.float64(0.25), np.int32(7)):
        ser, out = roundtrip("n", value, tmp_path)
        assert ser.kind == "json" and out == value and type(out) is not np.float64


def test_dataframe_falls_back_to_csv_gz(tmp_path):
    df = pd.DataFrame({"a": [1, "x", 2.5], "b": [1, 2, 3]})
    ser, out = roundtrip("mixed", df, tmp_path)
    assert ser.kind == "pandas" and ser.filename == "mixed.csv.gz"
    assert ser.metadata["format"] == "csv.gz"
    assert not (tmp_path / "work" / "mixed.parquet").exists()
    assert list(out.columns) == ["a", "b"] and out["b"].tolist() == [1, 2, 3]


def test_json_dict_and_list(tmp_path):
    obj = {"a": [1, 2.5, None, True], "b": {"c": "ü", "d": []}, "nan": float("nan")}
    ser, out = roundtrip("cfg", obj, tmp_path)
    assert ser.kind == "json" and ser.filename == "cfg.json"
    assert ser.content_type == "application/json"
    assert math.isnan(out.pop("nan"))
    obj = dict(obj)
    del obj["nan"]
    assert out == obj
    ser, out = roundtrip("lst", [1, [2, [3, {"x": None}]]], tmp_path)
    assert ser.kind == "json" and out == [1, [2, [3, {"x": None}]]]
    ser, out = roundtrip("tup", (1, "a"), tmp_path)
    assert ser.kind == "json" and out == [1, "a"]


@pytest.mark.parametrize(
    "obj", [{1: "int key"}, {"a": np.float64(1.0)}, {"a": np.int64(1)}, [{"x": {1, 2}}]]
)
def test_non_json_containers_are_pickle(tmp_path, obj):
    ser, out = roundtrip("d", obj, tmp_path, allow_pickle=True)
    assert ser.kind == "pickle"
    assert out == obj


def test_cyclic_list_is_pickle(tmp_path):
    lst = [1]
    lst.append(lst)
    ser, out = roundtrip("cyc", lst, tmp_path, allow_pickle=True)
    assert ser.kind == "pickle" and out[1] is out


def test_text_unicode(tmp_path):
    text = "héllo wörld ✓ 日本語\nline 2"
    ser, out = roundtrip("note", text, tmp_path)
    assert ser.kind == "text" and ser.filename == "note.txt"
    assert ser.path.read_bytes() == text.encode("utf-8")
    assert out == text


def test_file_path_str_and_path(tmp_path):
    src = tmp_path / "model weights.bin"
    src.write_bytes(b"\x00\x01" * 1000)
    for obj in (str(src), src):
        ser, out = roundtrip("m", obj, tmp_path)
        assert ser.kind == "file"
        assert ser.path == src  # no copy
        assert ser.filename == "model_weights.bin"
        assert ser.metadata["size"] == 2000
        assert out == str(src)


def test_missing_path_object_raises(tmp_path):
    with pytest.raises(ArtifactError):
        serialize("x", tmp_path / "missing", tmp_path)


def test_folder_roundtrip_nested(tmp_path):
    src = tmp_path / "data"
    (src / "a" / "b").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "top.txt").write_text("top")
    (src / "a" / "mid.csv").write_text("1,2\n")
    (src / "a" / "b" / "deep.bin").write_bytes(os.urandom(3000))
    ser, out = roundtrip("ignored", str(src), tmp_path)
    assert ser.kind == "folder" and ser.filename == "data.zip"
    assert ser.metadata["files"] == 3
    out = Path(out)
    assert out.name == "data_extracted" and out.parent == ser.path.parent
    for rel in ("top.txt", "a/mid.csv", "a/b/deep.bin"):
        assert (out / rel).read_bytes() == (src / rel).read_bytes()
    assert (out / "empty").is_dir()
    # getting it again replaces the extracted copy
    assert deserialize("folder", ser.path) == str(out)


def test_folder_zip_is_deterministic(tmp_path):
    src = tmp_path / "d"
    src.mkdir()
    for name in ("b.txt", "a.txt", "c.txt"):
        (src / name).write_text(name)
    (tmp_path / "w1").mkdir()
    (tmp_path / "w2").mkdir()
    one = serialize("d", src, tmp_path / "w1")
    two = serialize("d", src, tmp_path / "w2")
    assert one.path.read_bytes() == two.path.read_bytes()
    with zipfile.ZipFile(one.path) as zf:
        assert zf.namelist() == ["a.txt", "b.txt", "c.txt"]


def test_folder_symlinks(tmp_path):
    src = tmp_path / "d"
    src.mkdir()
    (src / "real.txt").write_text("inside")
    outside = tmp_path / "secret.txt"
    outside.write_text("outside")
    (src / "link_in.txt").symlink_to(src / "real.txt")
    (src / "link_out.txt").symlink_to(outside)
    ser = serialize("d", src, tmp_path)
    with zipfile.ZipFile(ser.path) as zf:
        names = zf.namelist()
        assert "link_in.txt" in names and "link_out.txt" not in names
        assert zf.read("link_in.txt") == b"inside"


@pytest.mark.parametrize("bad", ["../evil.txt", "/abs.txt", "a/../../evil.txt", "..\\evil.txt"])
def test_zip_slip_refused(tmp_path, bad):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.txt", "fine")
        zf.writestr(bad, "pwned")
    with pytest.raises(ArtifactError):
        deserialize("folder", archive)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "bad_extracted").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.zip"]
    with pytest.raises(ArtifactError):
        extract_zip(archive, tmp_path / "out")


def test_pickle_allowed_explicitly(tmp_path):
    ser, out = roundtrip("pt", Point(1, 2), tmp_path, allow_pickle=True)
    assert ser.kind == "pickle" and ser.filename == "pt.pkl"
    assert out == Point(1, 2)
    assert "Point" in ser.metadata["type"]


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_pickle_allowed_via_env(tmp_path, monkeypatch, value):
    monkeypatch.setenv("PIPELINES_ALLOW_PICKLE", value)
    ser = serialize("pt", Point(3, 4), tmp_path)
    assert deserialize("pickle", ser.path) == Point(3, 4)
    with pytest.raises(PickleNotAllowedError):  # explicit False beats the env
        deserialize("pickle", ser.path, allow_pickle=False)


@pytest.mark.parametrize("env", [None, "0", "no", ""])
def test_pickle_refused_runs_no_code(tmp_path, monkeypatch, env):
    if env is None:
        monkeypatch.delenv("PIPELINES_ALLOW_PICKLE", raising=False)
    else:
        monkeypatch.setenv("PIPELINES_ALLOW_PICKLE", env)
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(MarkerOnLoad(marker)))
    with pytest.raises(PickleNotAllowedError) as info:
        deserialize("pickle", path)
    assert isinstance(info.value, ArtifactError)
    msg = str(info.value)
    assert ".get(allow_pickle=True)" in msg
    assert "PIPELINES_ALLOW_PICKLE=1" in msg
    assert str(path) in msg
    assert not marker.exists()
    deserialize("pickle", path, allow_pickle=True)  # sanity: the payload does work
    assert marker.exists()


def test_unpicklable_object_raises(tmp_path):
    with pytest.raises(ArtifactError):
        serialize("fn", lambda: 1, tmp_path)
    assert not (tmp_path / "fn.pkl").exists()


def test_pickle_preview_truncated(tmp_path):
    ser = serialize("big", {1: "x" * 1000}, tmp_path)
    assert ser.kind == "pickle" and len(ser.preview) <= 300


def test_image_roundtrip(tmp_path):
    image = pytest.importorskip("PIL.Image")
    img = image.new("RGB", (4, 3), (255, 0, 0))
    ser, out = roundtrip("pic", img, tmp_path)
    assert ser.kind == "image" and ser.filename == "pic.png"
    assert out.size == (4, 3) and out.getpixel((0, 0)) == (255, 0, 0)


def test_unknown_kind(tmp_path):
    with pytest.raises(ArtifactError):
        deserialize("bogus", tmp_path / "x")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("../../x", "_.._x"),
        (".hidden", "hidden"),
        ("a/b\\c", "a_b_c"),
        ("", "artifact"),
        ("...", "artifact"),
        ("données é", "donn_es__"),
        ("ok-name_1.txt", "ok-name_1.txt"),
    ],
)
def test_safe_filename(name, expected):
    out = safe_filename(name)
    assert out == expected
    assert "/" not in out and "\\" not in out and not out.startswith(".")


def test_safe_filename_length_and_derived_names(tmp_path):
    assert len(safe_filename("a" * 500)) == 200
    ser = serialize("../../etc/passwd", "text", tmp_path)
    assert ser.filename == "_.._etc_passwd.txt"
    assert ser.path.parent == tmp_path


def test_file_size(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert file_size(path) == 3
