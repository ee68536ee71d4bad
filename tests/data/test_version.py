from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ganinf_mlops.data.lineage import lineage
from ganinf_mlops.data.manifest import Manifest, content_digest
from ganinf_mlops.data.version import (
    DATA_FILE,
    MANIFEST_FILE,
    Provenance,
    create_raw_version,
    load_version,
    write_version,
)
from ganinf_mlops.errors import ConfigError, DataError, DigestMismatchError, OutputExistsError


def _arrays(n: int = 5, m: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 2)), np.arange(n, dtype=np.int64), rng.normal(size=(m, 2))


def _raw(tmp_path: Path, name: str = "raw", **params: object):
    return create_raw_version(tmp_path / name, "gaussian2d", n=40, n_eval=10, **params)


def test_digest_is_stable_and_format_independent() -> None:
    x, ids, xe = _arrays()
    d = content_digest(x, ids, xe)
    assert d == content_digest(x.copy(), ids.copy(), xe.copy())
    # Byte order and memory layout do not matter, only the values.
    assert d == content_digest(np.asfortranarray(x).astype(">f8"), ids.astype(">i8"), xe)
    assert len(d) == 64 and int(d, 16) >= 0


def test_digest_is_sensitive_to_every_array() -> None:
    x, ids, xe = _arrays()
    base = content_digest(x, ids, xe)
    x2, ids2, xe2 = x.copy(), ids.copy(), xe.copy()
    x2[3, 1] = np.nextafter(x2[3, 1], np.inf)
    ids2[4] = 99
    xe2[0, 0] += 1.0
    changed = [
        content_digest(x2, ids, xe),
        content_digest(x, ids2, xe),
        content_digest(x, ids, xe2),
        content_digest(x.reshape(2, 5), ids, xe),  # same bytes, other shape
        content_digest(x, ids.astype(np.int32), xe),  # same values, other dtype
        content_digest(xe, ids[:3], x),  # arrays in another role
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_write_load_round_trip(tmp_path: Path) -> None:
    x, ids, xe = _arrays()
    v = write_version(
        tmp_path / "v", x, ids + 100, xe, dataset="npz", params={"a": 1}, is_anomaly_ids=[103]
    )
    assert sorted(os.listdir(tmp_path / "v")) == [DATA_FILE, MANIFEST_FILE]
    loaded = load_version(tmp_path / "v")
    for a, b in ((loaded.x, x), (loaded.ids, ids + 100), (loaded.x_eval, xe)):
        np.testing.assert_array_equal(a, b)
    assert loaded.manifest == v.manifest
    m = loaded.manifest
    assert (m.n_instances, m.shape, m.dtype, m.n_eval) == (5, [5, 2], "<f8", 3)
    assert m.digest == content_digest(x, ids + 100, xe)
    assert m.parent_digest is None and m.removed_ids == [] and m.dataset == "npz"
    assert m.is_anomaly_ids == [103]
    assert loaded.anomaly_mask().tolist() == [False, False, False, True, False]
    assert not loaded.x.flags.writeable
    assert Manifest.from_json(json.loads((tmp_path / "v" / MANIFEST_FILE).read_text())) == m


def test_create_raw_version_gaussian(tmp_path: Path) -> None:
    v = _raw(tmp_path, anomaly_frac=0.1, seed=2)
    assert v.manifest.dataset == "gaussian2d" and v.manifest.params["seed"] == 2
    np.testing.assert_array_equal(v.ids, np.arange(40))
    assert len(v.manifest.is_anomaly_ids) == 4
    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        create_raw_version(tmp_path / "x", "nope")
    with pytest.raises(ConfigError, match="bad parameters"):
        create_raw_version(tmp_path / "x", "gaussian2d", bogus=1)
    assert not (tmp_path / "x").exists()


def test_create_raw_version_from_npz_keeps_ids(tmp_path: Path) -> None:
    src = tmp_path / "in.npz"
    np.savez(src, x=np.ones((4, 3)), x_eval=np.zeros((2, 3)), ids=np.array([7, 3, 9, 1]))
    v = create_raw_version(tmp_path / "v", "npz", path=src)
    assert v.ids.tolist() == [7, 3, 9, 1] and v.manifest.is_anomaly_ids is None
    assert v.index_of([9, 7]).tolist() == [2, 0]
    with pytest.raises(DataError, match="2 id"):
        v.index_of([3, 4, 5])


def test_tampered_data_is_detected(tmp_path: Path) -> None:
    v = _raw(tmp_path)
    x = v.x.copy()
    x[7, 0] += 1e-9
    np.savez(v.path / DATA_FILE, x=x, ids=v.ids, x_eval=v.x_eval)
    with pytest.raises(DigestMismatchError, match="digest mismatch"):
        load_version(v.path)
    assert load_version(v.path, verify=False).x[7, 0] == x[7, 0]


def test_compressed_copy_still_verifies(tmp_path: Path) -> None:
    v = _raw(tmp_path)
    np.savez_compressed(v.path / DATA_FILE, x=v.x, ids=v.ids, x_eval=v.x_eval)
    assert load_version(v.path).digest == v.digest


def _rewrite(path: Path, **arrays: np.ndarray) -> None:
    with np.load(path / DATA_FILE) as f:
        data = {k: f[k] for k in f.files}
    data.update(arrays)
    np.savez(path / DATA_FILE, **data)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda p: (p / MANIFEST_FILE).unlink(), "manifest.json is missing"),
        (lambda p: (p / DATA_FILE).unlink(), "data.npz is missing"),
        (lambda p: (p / MANIFEST_FILE).write_text("{not json"), "not valid JSON"),
        (lambda p: (p / DATA_FILE).write_bytes(b"garbage"), "data.npz is corrupt"),
        (
            lambda p: (p / DATA_FILE).write_bytes((p / DATA_FILE).read_bytes()[:200]),
            "data.npz is corrupt",
        ),
        (lambda p: _rewrite(p, x=np.ones((3, 2))), r"'x' has shape \(3, 2\)"),
        (lambda p: _rewrite(p, ids=np.arange(40, dtype=np.int32)), "'ids' has shape"),
        (lambda p: _rewrite(p, x=np.full((40, 2), np.nan)), "non-finite"),
        (lambda p: _rewrite(p, ids=np.zeros(40, dtype=np.int64)), "not unique"),
        (lambda p: _rewrite(p, extra=np.ones(1)), "holds arrays"),
    ],
)
def test_load_rejects_broken_versions(tmp_path: Path, mutate, match: str) -> None:
    v = _raw(tmp_path)
    mutate(v.path)
    with pytest.raises(DataError, match=match):
        load_version(v.path, verify=False)


def test_load_rejects_missing_dir_and_bad_manifest_keys(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_version(tmp_path / "nope")
    v = _raw(tmp_path)
    mpath = v.path / MANIFEST_FILE
    good = json.loads(mpath.read_text())
    for bad, match in [
        ({**good, "surprise": 1}, r"unknown keys \['surprise'\]"),
        ({k: val for k, val in good.items() if k != "digest"}, r"missing keys \['digest'\]"),
        ({**good, "n_instances": "40"}, "'n_instances' has invalid value"),
        ({**good, "removed_ids": [1.5]}, "list of integers"),
        ({**good, "format_version": 2}, "unsupported format_version"),
        ({**good, "n_instances": 39}, "inconsistent"),
        ([good], "expected a JSON object"),
    ]:
        mpath.write_text(json.dumps(bad))
        with pytest.raises(DataError, match=match):
            load_version(v.path)


@pytest.mark.parametrize(
    ("x", "ids", "xe", "match"),
    [
        (np.ones(5), np.arange(5), np.ones((2, 2)), r"expected shape \[N, d\]"),
        (np.ones((5, 2)), np.arange(4), np.ones((2, 2)), r"'ids' expected shape \(5,\)"),
        (np.ones((5, 2)), np.array([0, 1, 2, 3, 3]), np.ones((2, 2)), "unique"),
        (np.ones((5, 2)), np.arange(5.0), np.ones((2, 2)), "integers"),
        (np.ones((5, 2)), np.arange(5), np.ones((2, 3)), "columns"),
        (np.array([[0.0, np.nan]] * 5), np.arange(5), np.ones((2, 2)), r"5 non-finite.*\(0, 1\)"),
    ],
)
def test_write_rejects_bad_arrays(tmp_path: Path, x, ids, xe, match: str) -> None:
    with pytest.raises(DataError, match=match):
        write_version(tmp_path / "v", x, ids, xe, dataset="npz", params={})
    assert not (tmp_path / "v").exists()


def test_existing_output_refused_then_replaced_with_force(tmp_path: Path) -> None:
    x, ids, xe = _arrays()
    first = write_version(tmp_path / "v", x, ids, xe, dataset="npz", params={})
    with pytest.raises(OutputExistsError, match="--force"):
        write_version(tmp_path / "v", x + 1, ids, xe, dataset="npz", params={})
    with pytest.raises(OutputExistsError):
        create_raw_version(tmp_path / "v", "gaussian2d", n=5)
    assert load_version(tmp_path / "v").digest == first.digest
    second = write_version(tmp_path / "v", x + 1, ids, xe, dataset="npz", params={}, force=True)
    assert second.digest != first.digest
    assert load_version(tmp_path / "v").digest == second.digest
    assert sorted(os.listdir(tmp_path)) == ["v"]


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    x, ids, xe = _arrays()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        write_version(tmp_path / "v", x, ids, xe, dataset="npz", params={})
    assert os.listdir(tmp_path) == []


def test_failed_forced_write_keeps_old_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, ids, xe = _arrays()
    old = write_version(tmp_path / "v", x, ids, xe, dataset="npz", params={})
    monkeypatch.setattr("ganinf_mlops.data.version.write_json", _raise_oserror)
    with pytest.raises(OSError):
        write_version(tmp_path / "v", x + 1, ids, xe, dataset="npz", params={}, force=True)
    assert os.listdir(tmp_path) == ["v"]
    assert load_version(tmp_path / "v").digest == old.digest


def _raise_oserror(*args: object, **kwargs: object) -> None:
    raise OSError("interrupted")


def _child(tmp_path: Path, parent, name: str, drop: list[int]):
    keep = ~np.isin(parent.ids, drop)
    return write_version(
        tmp_path / name,
        parent.x[keep],
        parent.ids[keep],
        parent.x_eval,
        dataset="cleanse",
        params={},
        provenance=Provenance(parent, removed_ids=drop),
    )


def test_lineage_walks_back_to_raw(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    (tmp_path / "gen").mkdir()
    c1 = _child(tmp_path / "gen", raw, "c1", [3, 1])
    c2 = _child(tmp_path, c1, "c2", [5])
    assert c1.manifest.parent_path == "../../raw" and c1.manifest.removed_ids == [1, 3]
    assert [v.digest for v in lineage(load_version(c2.path))] == [raw.digest, c1.digest, c2.digest]
    assert [v.digest for v in lineage(raw)] == [raw.digest]


def test_lineage_rejects_replaced_parent(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    c1 = _child(tmp_path, raw, "c1", [0])
    c2 = _child(tmp_path, c1, "c2", [1])
    write_version(c1.path, c1.x + 1, c1.ids, c1.x_eval, dataset="npz", params={}, force=True)
    with pytest.raises(DigestMismatchError, match="broken lineage: parent"):
        lineage(c2)


def test_lineage_rejects_tampered_grandparent(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    c2 = _child(tmp_path, _child(tmp_path, raw, "c1", [0]), "c2", [1])
    _rewrite(raw.path, x_eval=raw.x_eval + 1)
    with pytest.raises(DigestMismatchError, match="raw"):
        lineage(c2)


def test_lineage_rejects_missing_parent(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    c2 = _child(tmp_path, _child(tmp_path, raw, "c1", [0]), "c2", [1])
    shutil.rmtree(tmp_path / "c1")
    with pytest.raises(DataError, match=r"broken lineage: parent .*c1 of .*c2 is missing"):
        lineage(c2)


def test_lineage_rejects_inconsistent_removed_ids(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    keep = raw.ids >= 2
    child = write_version(
        tmp_path / "c",
        raw.x[keep],
        raw.ids[keep],
        raw.x_eval,
        dataset="cleanse",
        params={},
        provenance=Provenance(raw, removed_ids=[0]),  # id 1 was dropped too but not recorded
    )
    with pytest.raises(DataError, match="differ from the ids of parent"):
        lineage(child)


def test_write_rejects_inconsistent_removed_ids(tmp_path: Path) -> None:
    raw = _raw(tmp_path)
    x, ids, xe = raw.x[1:], raw.ids[1:], raw.x_eval
    for kwargs, match in [
        ({"provenance": Provenance(raw, removed_ids=[0, 1])}, "overlaps"),
        ({"provenance": Provenance(raw, removed_ids=[0, 999])}, "not in the parent"),
        ({"is_anomaly_ids": [0]}, "'is_anomaly_ids' contains ids"),
    ]:
        with pytest.raises(DataError, match=match):
            write_version(tmp_path / "c", x, ids, xe, dataset="cleanse", params={}, **kwargs)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("hint", ["/etc", "~/data", "raw\0x"])
def test_absolute_parent_path_is_refused(tmp_path: Path, hint: str) -> None:
    """A manifest pointing its lineage anywhere on the machine is not followed."""
    import json

    raw = _raw(tmp_path)
    child = _child(tmp_path, raw, "c1", [0])
    path = child.path / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["parent_path"] = hint
    path.write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="'parent_path' must be relative"):
        load_version(child.path)


def test_find_manifests_skips_a_fifo_named_manifest(tmp_path: Path) -> None:
    """Opening a FIFO would block forever: only regular files are read."""
    import os

    from ganinf_mlops.data.version import find_manifests

    raw = _raw(tmp_path)
    (tmp_path / "trap").mkdir()
    os.mkfifo(tmp_path / "trap" / "manifest.json")
    assert [d for d, _ in find_manifests(tmp_path)] == [raw.path]
