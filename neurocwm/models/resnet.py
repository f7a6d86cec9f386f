"""ResNet-18 trunk that returns its 8 BasicBlock outputs (the units placed on the cortical sheet).

With ``width=64`` the module tree and parameter names equal torchvision's ``resnet18`` (minus
``fc``), so weights load into ``torchvision.models.resnet18`` with ``strict=False`` and back.
The blocks are written here in plain torch (torchvision's PyPI wheels do not import against a
CPU-only torch).
``width`` scales every stage (width, 2w, 4w, 8w) for the quick CPU preset.

``blurpool=True`` is the FFCV ImageNet ResNet-18 that TopoNets (Deb et al. 2025, ICLR) trained:
every strided convolution with at least 16 input channels is preceded by a fixed depthwise 3x3
binomial blur (Zhang 2019, ICML, "Making convolutional networks shift-invariant again"), so its
weights read ``<conv>.conv.weight`` plus a ``<conv>.blur_filter`` buffer.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .registry import register_model

BLOCK_NAMES = ("layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "layer4.0", "layer4.1")


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs + identity or 1x1 projection), torchvision's names."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class BlurPoolConv2d(nn.Module):
    """A fixed depthwise 3x3 binomial blur ([1, 2, 1] x [1, 2, 1] / 16, stride 1, zero padding 1)
    followed by ``conv`` (Zhang 2019, ICML; the FFCV ResNet recipe).

    Parameters
    ----------
    conv : nn.Conv2d
        The (strided) convolution applied to the blurred input; kept as ``self.conv``.

    The filter is a buffer ``blur_filter`` of shape ``(in_channels, 1, 3, 3)`` (saved with the
    weights, as in the published checkpoints).
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        filt = (k[:, None] * k[None, :] / 16.0).expand(conv.in_channels, 1, 3, 3).clone()
        self.conv = conv
        self.register_buffer("blur_filter", filt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.conv2d(x, self.blur_filter, stride=1, padding=1, groups=self.conv.in_channels)
        return self.conv(x)


def _apply_blurpool(module: nn.Module) -> None:
    """Wrap every strided ``nn.Conv2d`` with >= 16 input channels in :class:`BlurPoolConv2d`."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d) and max(child.stride) > 1 and child.in_channels >= 16:
            setattr(module, name, BlurPoolConv2d(child))
        else:
            _apply_blurpool(child)


class SpatialResNet18(nn.Module):
    """ResNet-18 trunk.

    Parameters
    ----------
    width : int
        Channels of the first stage (64 = standard ResNet-18).
    blurpool : bool
        Blur before every strided convolution with >= 16 input channels (:class:`BlurPoolConv2d`).

    ``forward(x)`` returns ``(pooled, blocks)``: the global-average-pooled ``8*width`` vector and
    a dict ``block name -> (B, C, H, W)`` output of each BasicBlock (post-residual, post-ReLU).
    """

    def __init__(self, width: int = 64, blurpool: bool = False):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.width = width
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.inplanes = width
        self.layer1 = self._make_layer(width, 1)
        self.layer2 = self._make_layer(width * 2, 2)
        self.layer3 = self._make_layer(width * 4, 2)
        self.layer4 = self._make_layer(width * 8, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.out_features = width * 8
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.blurpool = bool(blurpool)
        if blurpool:
            _apply_blurpool(self)

    def _make_layer(self, planes: int, stride: int) -> nn.Sequential:
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(
                nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )
        blocks = [BasicBlock(self.inplanes, planes, stride, down), BasicBlock(planes, planes)]
        self.inplanes = planes
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        blocks: dict[str, torch.Tensor] = {}
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            for j, block in enumerate(stage):
                x = block(x)
                blocks[f"{_stage_name(stage, self)}.{j}"] = x
        return torch.flatten(self.avgpool(x), 1), blocks

    def forward_blocks(self, x: torch.Tensor, layers=None) -> dict[str, torch.Tensor]:
        """Block outputs, computed only as far into the network as ``layers`` need.

        Parameters
        ----------
        x : Tensor (B, 3, H, W)
            Normalised images.
        layers : collection of str, optional
            Block names (``layer1.0`` ... ``layer4.1``); default all.

        Returns
        -------
        dict of str to Tensor (B, C, H, W)
            Every block output up to the last block of ``layers`` in network order, equal to
            those of :meth:`forward` (same modules, same order); the later blocks, the pooling
            and the head are not run.

        Raises
        ------
        ValueError
            On an unknown block name.
        """
        want = set(BLOCK_NAMES if layers is None else layers)
        unknown = sorted(want - set(BLOCK_NAMES))
        if unknown:
            raise ValueError(f"no block(s) {unknown}; the blocks are {list(BLOCK_NAMES)}")
        blocks: dict[str, torch.Tensor] = {}
        if not want:
            return blocks
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in ("layer1", "layer2", "layer3", "layer4"):
            for j, block in enumerate(getattr(self, name)):
                x = block(x)
                blocks[f"{name}.{j}"] = x
                want.discard(f"{name}.{j}")
                if not want:
                    return blocks
        return blocks

    @torch.no_grad()
    def block_dims(self, image_size: int) -> dict[str, tuple[int, int, int]]:
        """(C, H, W) of each block output for a square input of ``image_size`` px."""
        was = self.training
        self.eval()
        p = next(self.parameters())
        _, blocks = self(torch.zeros(1, 3, image_size, image_size, device=p.device, dtype=p.dtype))
        self.train(was)
        return {k: tuple(v.shape[1:]) for k, v in blocks.items()}


def _stage_name(stage: nn.Module, model: SpatialResNet18) -> str:
    for name in ("layer1", "layer2", "layer3", "layer4"):
        if getattr(model, name) is stage:
            return name
    raise RuntimeError("unknown stage")


register_model("resnet18", SpatialResNet18, "ResNet-18 trunk (TDANN paper scale)", width=64)
register_model("resnet18_w32", SpatialResNet18, "width-reduced ResNet-18 (quick CPU preset)", width=32)
register_model("resnet18_w16", SpatialResNet18, "width-reduced ResNet-18 (tests)", width=16)
register_model(
    "resnet18_blurpool",
    SpatialResNet18,
    "ResNet-18 with blur-pooled strided convs (TopoNets, FFCV)",
    width=64,
    blurpool=True,
)
register_model(
    "resnet18_blurpool_w16", SpatialResNet18, "width-reduced blur-pool ResNet-18 (tests)", width=16, blurpool=True
)
