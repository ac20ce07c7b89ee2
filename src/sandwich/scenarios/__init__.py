"""Scenarios: what the bottleneck is and which real codec carries it. Each is a configuration.

=========  ============================================  ==================  =========
name       what the codec carries                        real codec          base
=========  ============================================  ==================  =========
rgb        3-channel bottleneck, same size               JPEG 4:2:0          identity
rgb444     3-channel bottleneck, same size               JPEG 4:4:4          identity
msssim     as rgb, trained for MS-SSIM                   JPEG 4:2:0          identity
lpips      as rgb, trained for LPIPS                     JPEG 4:2:0          identity
gray       colour through a 1-channel bottleneck         JPEG 4:0:0 (gray)   chroma modem
lowres2    3-channel bottleneck at half resolution       JPEG 4:2:0          bicubic
lowres4    3-channel bottleneck at quarter resolution    JPEG 4:2:0          bicubic
=========  ============================================  ==================  =========

``base`` is the analytic scheme an untrained sandwich starts from (the networks add residuals that
start at zero): the plain codec for ``rgb``, chroma on DCT-aligned carriers for ``gray``,
antialiased bicubic down/up for ``lowres``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sandwich.errors import SandwichError


@dataclass(frozen=True)
class Scenario:
    name: str
    subsampling: str
    bottleneck_channels: int
    downscale: int
    base: str
    quality_range: tuple[int, int]
    description: str
    codec: str = "jpeg"
    distortion: str = "psnr"  # the training loss (see sandwich.training.losses)

    def to_dict(self) -> dict:
        return asdict(self)


SCENARIOS: dict[str, Scenario] = {
    "rgb": Scenario(
        "rgb", "4:2:0", 3, 1, "identity", (10, 90), "RGB through 4:2:0 JPEG, MSE-optimised"
    ),
    "rgb444": Scenario(
        "rgb444", "4:4:4", 3, 1, "identity", (10, 90), "RGB through 4:4:4 JPEG, MSE-optimised"
    ),
    "msssim": Scenario(
        "msssim",
        "4:2:0",
        3,
        1,
        "identity",
        (10, 90),
        "RGB through 4:2:0 JPEG, for MS-SSIM",
        distortion="msssim",
    ),
    "lpips": Scenario(
        "lpips",
        "4:2:0",
        3,
        1,
        "identity",
        (10, 90),
        "RGB through 4:2:0 JPEG, for LPIPS",
        distortion="lpips",
    ),
    "gray": Scenario(
        "gray", "gray", 1, 1, "modem", (10, 90), "colour through a grayscale (4:0:0) JPEG"
    ),
    "lowres2": Scenario(
        "lowres2", "4:2:0", 3, 2, "resample", (10, 90), "full resolution through a 2x lower one"
    ),
    "lowres4": Scenario(
        "lowres4", "4:2:0", 3, 4, "resample", (10, 90), "full resolution through a 4x lower one"
    ),
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SandwichError(
            f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}"
        ) from None
