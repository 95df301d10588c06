"""Nothing in a checkpoint is ever executed or imported, and damaged files only raise CheckpointError."""

from __future__ import annotations

import io
import sys
import types
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ckpt_factory as cf
from simsparse.errors import CheckpointError
from simsparse.masks import io as mio
from simsparse.masks.safe_pickle import Placeholder, load_torch_zip


class FakeDictConfig:
    """Stands in for omegaconf.DictConfig; removed from this module before loading."""

    def __init__(self, content: dict) -> None:
        self.content = content


@pytest.mark.parametrize("via", ["system", "eval"])
@pytest.mark.parametrize("placement", ["beside", "inside", "top"])
@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_reduce_never_runs(tmp_path, via, placement, legacy):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    expected = cf.make_malicious(path, marker=marker, placement=placement, legacy=legacy, via=via)
    try:
        maskset = mio.load(path)
    except CheckpointError:
        maskset = None
    assert not marker.exists()
    if maskset is not None:  # zip files with the payload beside the weights still give their masks
        assert {k: m.tolist() for k, m in ((k, l.mask) for k, l in maskset.layers.items())} == \
            {k: m.tolist() for k, m in expected.items()}
        assert maskset.provenance["foreign_objects"] in (["posix.system"], ["__builtin__.eval"], ["nt.system"])


def test_the_malicious_file_would_run_its_command_if_loaded_blindly(tmp_path):
    """Guards the test above: the payload is live (so its not running proves the loader is safe)."""
    marker = tmp_path / "pwned"
    cf.make_malicious(tmp_path / "evil.pt", marker=marker, placement="beside")
    cf.torch_load_trusted(tmp_path / "evil.pt")  # the unsafe route, on purpose, in a temp dir
    assert marker.exists()


def test_foreign_module_is_never_imported(tmp_path, monkeypatch):
    name = "simsparse_test_sideeffect_mod"
    marker = tmp_path / "imported"
    fake = types.ModuleType(name)

    class Thing:
        pass

    Thing.__module__, Thing.__qualname__ = name, "Thing"
    fake.Thing = Thing
    monkeypatch.setitem(sys.modules, name, fake)
    sd = cf.masked_mlp(cf.mlp_masks()).state_dict()
    torch.save({"state_dict": sd, "extra": Thing()}, tmp_path / "c.pt")
    monkeypatch.delitem(sys.modules, name)
    (tmp_path / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Thing: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    maskset = mio.load(tmp_path / "c.pt")
    assert not marker.exists() and name not in sys.modules
    assert f"{name}.Thing" in maskset.provenance["foreign_objects"]


def test_srigl_checkpoint_with_unimportable_config_class_still_loads(tmp_path, monkeypatch):
    path = tmp_path / "srigl.pt"
    expected = cf.make_srigl(path, cfg=FakeDictConfig({"rigl": {"delta": 100}}))
    monkeypatch.delattr(sys.modules[__name__], "FakeDictConfig")
    with pytest.raises(AttributeError):  # unimportable now: blind unpickling fails
        cf.torch_load_trusted(path)
    maskset = mio.load(path)
    for fqn, mask in expected.items():
        np.testing.assert_array_equal(maskset.layers[fqn].mask, mask)
    assert any(n.endswith("FakeDictConfig") for n in maskset.provenance["foreign_objects"])


def test_placeholders_record_reduce_and_build_without_acting(tmp_path):
    torch.save({"cfg": FakeDictConfig({"a": 1}), "w": torch.ones(2)}, tmp_path / "c.pt")
    obj, foreign = load_torch_zip(str(tmp_path / "c.pt"))
    assert isinstance(obj["cfg"], Placeholder) and obj["cfg"].state == {"content": {"a": 1}}
    assert foreign == [f"{__name__}.FakeDictConfig"]
    assert torch.equal(obj["w"], torch.ones(2))


def test_safe_reader_rebuilds_strided_and_shared_tensors(tmp_path):
    base = torch.arange(12.0).reshape(3, 4)
    torch.save({"t": base.t(), "view": base[1:, 2:], "cfg": FakeDictConfig({})}, tmp_path / "c.pt")
    obj, _ = load_torch_zip(str(tmp_path / "c.pt"))
    assert torch.equal(obj["t"], base.t()) and torch.equal(obj["view"], base[1:, 2:])


# ----------------------------------------------------------------------------- fuzzing

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    files = {}
    makers = {"native": cf.make_native, "state_dict": cf.make_state_dict, "safetensors": cf.make_safetensors,
              "srigl": cf.make_srigl}
    for name, make in makers.items():
        make(root / name)
        files[name] = (root / name).read_bytes()
    cf.make_malicious(root / "evil", marker=root / "pwned", placement="beside")
    files["evil"] = (root / "evil").read_bytes()
    cf.make_malicious(root / "legacy", marker=root / "pwned", placement="beside", legacy=True)
    files["legacy"] = (root / "legacy").read_bytes()
    return root, files


def _load_only_checkpoint_errors(root, data: bytes) -> None:
    path = root / "fuzzed"
    path.write_bytes(data)
    try:
        mio.load(path)
    except CheckpointError as exc:
        assert "\n" not in str(exc)
    assert not (root / "pwned").exists()


@FUZZ
@given(data=st.data())
def test_truncated_files_only_raise_checkpoint_error(bases, data):
    root, files = bases
    blob = files[data.draw(st.sampled_from(sorted(files)))]
    _load_only_checkpoint_errors(root, blob[: data.draw(st.integers(0, len(blob) - 1))])


@FUZZ
@given(data=st.data())
def test_flipped_bytes_only_raise_checkpoint_error(bases, data):
    root, files = bases
    blob = bytearray(files[data.draw(st.sampled_from(sorted(files)))])
    for _ in range(data.draw(st.integers(1, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    _load_only_checkpoint_errors(root, bytes(blob))


@FUZZ
@given(head=st.sampled_from([b"", b"PK\x03\x04", b"\x80\x02", b"\x10\x00\x00\x00\x00\x00\x00\x00{"]),
       body=st.binary(max_size=512))
def test_random_bytes_only_raise_checkpoint_error(bases, head, body):
    _load_only_checkpoint_errors(bases[0], head + body)


def test_a_zip_claiming_a_newer_zip_version_is_one_checkpoint_error(bases, tmp_path):
    blob = bytearray(bases[1]["state_dict"])
    central = blob.index(b"PK\x01\x02")
    blob[central + 6:central + 8] = (64).to_bytes(2, "little")  # "version needed to extract": 6.4
    path = tmp_path / "newer.pt"
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="zip file version 6.4"):
        mio.load(path)


def _rezip_with_pickle(blob: bytes, mutate) -> bytes:
    """The torch zip with its data.pkl replaced (valid CRCs, so the pickle itself is what is damaged)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            payload = src.read(info)
            dst.writestr(info.filename, mutate(payload) if info.filename.endswith("/data.pkl") else payload)
    return out.getvalue()


@FUZZ
@given(data=st.data())
def test_damaged_pickles_inside_valid_zips_only_raise_checkpoint_error(bases, data):
    root, files = bases
    name = data.draw(st.sampled_from(["evil", "srigl"]))
    flips = data.draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=6))

    def mutate(pkl: bytes) -> bytes:
        buf = bytearray(pkl)
        for where, xor in flips:
            buf[int(where * len(buf))] ^= xor
        return bytes(buf)

    _load_only_checkpoint_errors(root, _rezip_with_pickle(files[name], mutate))
