"""The one timm CNN class and its variants: state-dict layout, resnet34's move to our head, old checkpoints."""

from __future__ import annotations

import warnings

import pytest
import timm
import torch

from detectors import create_detector, get_detector_class, load_detector
from detectors.timm_cnn.detector import TimmCNN
from tests.helpers import SyntheticDataModule, make_batch, quiet_trainer

VARIANTS = ("resnet34", "xception", "efficientnet_b4")


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_are_one_class_with_one_layout(name):
    cls = get_detector_class(name)
    assert cls.__mro__[1] is TimmCNN  # no intermediate levels
    model = create_detector(name, **cls.tiny_config)
    keys = list(model.state_dict())
    assert keys and all(k.startswith(("net.backbone.", "net.head.fc.")) for k in keys), keys[:5]
    assert [k for k in keys if k.startswith("net.head.")] == ["net.head.fc.weight", "net.head.fc.bias"]


def test_resnet34_parameter_count_is_timms_classifier():
    """Moving resnet34 from timm's classifier (the old ``net``) to our head keeps every parameter."""
    ours = create_detector("resnet34", pretrained=False)
    timm_head = timm.create_model("resnet34", pretrained=False, num_classes=1)
    assert ours.num_trainable_parameters() == sum(p.numel() for p in timm_head.parameters())


def _old_resnet34_checkpoint(path, timm_model, hparams):
    """A Lightning checkpoint as the earlier ``resnet34`` wrote it: ``net`` was the timm classifier itself
    (``net.fc.*``, ``net.<backbone>.*``) and ``arch``/``input_size`` not given were saved as ``None``."""
    model = create_detector("resnet34", arch="test_resnet", pretrained=False, input_size=32)
    trainer = quiet_trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(model, datamodule=SyntheticDataModule(model.data_spec, n=4, batch_size=4))
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["hyper_parameters"] = hparams
    ckpt["state_dict"] = {f"net.{k}": v for k, v in timm_model.state_dict().items()}
    torch.save(ckpt, path)


def test_old_resnet34_checkpoints_still_load(tmp_path):
    torch.manual_seed(3)
    old = timm.create_model("test_resnet", pretrained=False, num_classes=1).eval()
    path = tmp_path / "old.ckpt"
    hparams = {"arch": "test_resnet", "pretrained": False, "weights_path": None, "drop_rate": 0.0}
    _old_resnet34_checkpoint(path, old, {**hparams, "input_size": None, "epochs": 2})
    model = load_detector(path, expected="resnet34").eval()
    assert model.data_spec.input_size == 256  # None meant the class default
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model.net(x), old(x))

    # Lightning's own loading (resume, Trainer.test(ckpt_path=...)) goes through the same upgrade.
    fresh = create_detector("resnet34", arch="test_resnet", pretrained=False, input_size=32)
    dm = SyntheticDataModule(fresh.data_spec, n=4, batch_size=4, test_sets=("a",))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quiet_trainer().test(fresh, datamodule=dm, ckpt_path=str(path), verbose=False)
    assert torch.equal(fresh.net.head.fc.weight, old.fc.weight)
    assert torch.equal(fresh.net.backbone.conv1[0].weight, old.conv1[0].weight)


def test_variant_defaults_survive_a_checkpoint(tmp_path):
    model = create_detector("efficientnet_b4", arch="test_efficientnet", pretrained=False, input_size=32)
    assert model.hparams["mean"] == "pretrained" and model.hparams["drop_path_rate"] == 0.2
    trainer = quiet_trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(model, datamodule=SyntheticDataModule(model.data_spec, n=4, batch_size=4))
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    again = load_detector(tmp_path / "m.ckpt", expected="efficientnet_b4").eval()
    assert again.data_spec == model.data_spec
    batch = make_batch(model.data_spec, n=2)
    with torch.no_grad():
        assert torch.equal(again(batch).logits, model.eval()(batch).logits)


def test_variant_rejects_an_unknown_default():
    with pytest.raises(TypeError, match=r"no argument\(s\) \['archh'\]"):
        TimmCNN.variant(archh="x")


def test_bad_normalisation_names_the_argument():
    with pytest.raises(ValueError, match="mean must be 3 floats or 'pretrained'"):
        create_detector("resnet34", arch="test_resnet", pretrained=False, mean="imagenet")
