import pytest
import torch

from simsparse.errors import GeometryError, UnknownNameError
from simsparse.models import MODELS, build_model, example_inputs

pytestmark = pytest.mark.usefixtures("torch_single_thread")

TINY = {
    "mlp": ((1, 8, 8), {}),
    "cnn": ((3, 8, 8), {"width": 8}),
    "wrn22_2": ((3, 8, 8), {"depth": 10, "widen": 1, "width": 4}),
    "resnet50": ((3, 8, 8), {"width": 4, "blocks": (1, 1, 1, 1)}),
    "vit_tiny": ((3, 8, 8), {"depth": 1, "width": 16, "heads": 2}),
    "vit_b16": ((3, 32, 32), {"depth": 1, "width": 16, "heads": 2, "mlp_dim": 32}),
    "transformer": ((5,), {"width": 16, "depth": 1, "heads": 2}),
    "bert_base": ((5,), {"width": 16, "depth": 1, "heads": 2, "vocab": 50}),
}


def test_every_registered_model_has_a_tiny_variant_under_test():
    assert set(MODELS.names()) == set(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_variant_runs_forward_and_backward(name):
    torch.manual_seed(0)
    shape, opts = TINY[name]
    model = build_model(name, num_classes=7, input_shape=shape, **opts)
    out = model(*example_inputs(name, shape, batch=2))
    expected = (2, shape[0], 7) if name == "transformer" else (2, 7)
    assert tuple(out.shape) == expected
    out.float().sum().backward()


@pytest.mark.parametrize("name,classes,shape,params", [
    ("resnet50", 1000, (3, 224, 224), 25_557_032),   # torchvision resnet50
    ("vit_b16", 1000, (3, 224, 224), 86_567_656),    # torchvision vit_b_16
    ("bert_base", 2, (128,), 109_483_778),           # HF BertForSequenceClassification, 2 labels
])
def test_full_size_parameter_count_matches_public_implementation(name, classes, shape, params):
    with torch.device("meta"):
        model = build_model(name, num_classes=classes, input_shape=shape)
    assert sum(p.numel() for p in model.parameters()) == params


def test_parameter_names_follow_public_implementations():
    with torch.device("meta"):
        r = dict(build_model("resnet50", num_classes=10, input_shape=(3, 32, 32)).named_parameters())
        v = dict(build_model("vit_b16", num_classes=10, input_shape=(3, 32, 32)).named_parameters())
        b = dict(build_model("bert_base", num_classes=2, input_shape=(8,)).named_parameters())
    assert {"conv1.weight", "layer1.0.conv1.weight", "layer1.0.downsample.0.weight", "fc.weight"} <= set(r)
    pre = "encoder.layers.encoder_layer_0."
    assert {"conv_proj.weight", pre + "self_attention.in_proj_weight", pre + "self_attention.out_proj.weight",
            pre + "mlp.0.weight", pre + "mlp.3.weight", "heads.head.weight"} <= set(v)
    assert {"bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.intermediate.dense.weight",
            "bert.encoder.layer.0.output.dense.weight", "classifier.weight"} <= set(b)


def test_unknown_model_lists_known_names():
    with pytest.raises(UnknownNameError, match="resnet50"):
        build_model("resnet5", num_classes=10, input_shape=(3, 8, 8))


def test_unknown_option_is_a_geometry_error():
    with pytest.raises(GeometryError, match="mlp"):
        build_model("mlp", num_classes=10, input_shape=(4,), widht=3)
