"""What the scripts that write PyTorch CNNs to ONNX share (scripts/onnx-families.py,
scripts/export-torch-cnns.py): seeded random weights with BatchNorm far from the identity,
and the TorchScript export at opset 17 with a dynamic batch dimension.

Needs torch (and onnx, which torch's exporter uses)."""
import warnings

import torch
from torch import nn


def randomize_normalization(model, seed=1):
    """Draws every BatchNorm2d's and LayerNorm's affine parameters and every BatchNorm2d's
    running statistics at random (seeded), so eval-mode normalization is far from the identity:
    scale 0.5 + U(0, 1), bias 0.2 N(0, 1), mean 0.2 N(0, 1), variance 0.5 + U(0, 1).
    Returns the model."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.bias.shape, generator=g))
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    return model


def seeded(make, seed=0, statistics_seed=1):
    """`make()` built after torch.manual_seed(seed) (its own random initialization), with
    randomized normalization (`randomize_normalization`, seeded by `statistics_seed`), in eval mode."""
    torch.manual_seed(seed)
    return randomize_normalization(make().eval(), statistics_seed)


def export(model, size, path, opset=17):
    """Writes `model` (input [N, 3, size, size]) to ONNX with PyTorch's TorchScript exporter:
    input "input", output "logits", batch dimension "N" dynamic."""
    x = torch.rand(1, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), path, opset_version=opset, dynamo=False, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
