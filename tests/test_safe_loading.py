"""No code path unpickles untrusted data: a checkpoint carrying a malicious pickle is refused unexecuted."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from detectors import load_detector
from detectors.weights import read_state_dict


class _Payload:
    """Unpickling this object would create a marker file: the proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _malicious_checkpoint(path, marker) -> None:
    obj = {"detector_name": "resnet34", "state_dict": {"w": torch.zeros(1)}, "evil": _Payload(str(marker))}
    with open(path, "wb") as f:
        torch.save(obj, f, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    assert not marker.exists()


def test_load_detector_refuses_pickle_payload_without_running_it(tmp_path):
    ckpt, marker = tmp_path / "evil.ckpt", tmp_path / "pwned"
    _malicious_checkpoint(ckpt, marker)
    with pytest.raises(ValueError, match="refusing to load"):
        load_detector(ckpt)
    assert not marker.exists(), "the pickle payload was executed"


def test_read_state_dict_refuses_pickle_payload_without_running_it(tmp_path):
    ckpt, marker = tmp_path / "evil.pth", tmp_path / "pwned"
    _malicious_checkpoint(ckpt, marker)
    with pytest.raises(ValueError, match="refusing to load"):
        read_state_dict(ckpt)
    assert not marker.exists(), "the pickle payload was executed"


def test_the_payload_really_is_dangerous_under_plain_pickle(tmp_path):
    """Guards the two tests above against a payload that would never have run anyway."""
    ckpt, marker = tmp_path / "evil.pth", tmp_path / "pwned"
    _malicious_checkpoint(ckpt, marker)
    torch.load(ckpt, weights_only=False)
    assert marker.exists()


def test_safetensors_and_plain_state_dicts_load(tmp_path):
    from safetensors.torch import save_file

    sd = {"a": torch.arange(3.0), "b": torch.ones(2, 2)}
    save_file(sd, str(tmp_path / "w.safetensors"))
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "w.pth")
    assert torch.equal(read_state_dict(tmp_path / "w.safetensors")["b"], sd["b"])
    assert set(read_state_dict(tmp_path / "w.pth")) == {"module.a", "module.b"}
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        read_state_dict(tmp_path / "missing.pth")
