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
hdr16      16-bit RGB through an 8-bit bottleneck        JPEG 4:2:0          identity
hdr16-444  as hdr16, up to quality 100                   JPEG 4:4:4          identity
normals    a tangent-space normal map (3 channels)       JPEG 4:2:0          identity
material6  albedo + normals (6 channels) in 2 planes     JPEG 4:2:0, 2 tall  identity
=========  ============================================  ==================  =========

``base`` is the analytic scheme an untrained sandwich starts from (the networks add residuals that
start at zero): the plain codec for ``rgb``, chroma on DCT-aligned carriers for ``gray``,
antialiased bicubic down/up for ``lowres``.

``bit_depth`` is the bit depth of the images a scenario's models take and return (the bottleneck
stays 8-bit: a real JPEG). The networks always work on floats in 0..255: an image with
``bit_depth`` b enters as ``x / ((2**b - 1) / 255)`` (x16 / 257 for 16 bits; the fractional part
carries the extra precision) and the post-processor's output leaves as
``round(y * (2**b - 1) / 255)``, clipped to 0..2**b - 1. So ``hdr16`` is ``rgb`` with 16-bit input
and output; an untrained ``hdr16`` model is "the 8-bit ceiling": round to 8 bits, plain JPEG,
scale back. 10- and 12-bit content stored the PNG way (scaled to 16 bits) goes through ``hdr16``
as it is.

``channels`` is the number of channels of the images in and out (3 for every RGB scenario) and
``planes`` the number of ``bottleneck_channels``-channel images the bottleneck is made of. Several
planes travel in ONE standard JPEG, stacked vertically (plane p occupies rows p*h..(p+1)*h of a
planes*h tall image), so any viewer opens the file and shows the planes one above the other. The
``identity`` base of a multi-plane scenario puts channel group g (channels 3g..3g+2) into
plane g as it is (missing channels of the last plane are filled with 128), so an
untrained ``material6`` model is exactly "albedo and normal map as two 4:2:0 JPEG planes in one
file" (the ``material-jpeg`` baseline). N-channel images are stored as (H, W, N) uint8 ``.npy``
arrays (``sandwich data --kind material``). ``normals`` needs no new mechanism: it is ``rgb``
trained and evaluated on the normal maps alone (``data/material/normals``, 3-channel PNGs).
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
    codec: str = "jpeg"  # the real codec, by its name in sandwich.codecs.CODECS
    proxy: str = "jpeg"  # its differentiable twin, by its name in sandwich.proxies.PROXIES
    distortion: str = "mse"  # the default training loss (see sandwich.training.losses)
    bit_depth: int = 8  # bits per sample of the images in and out (the bottleneck stays 8-bit)
    channels: int = 3  # channels of the images in and out (6 for albedo + normals)
    planes: int = 1  # bottleneck images stacked vertically in the one JPEG file

    @property
    def peak(self) -> int:
        """Largest sample value of the images in and out: 255, or 65535 for 16 bits."""
        return (1 << self.bit_depth) - 1

    @property
    def transposable(self) -> bool:
        """False when a transpose changes what the bottleneck means, so a decoding self-ensemble
        (nets.ensemble) may only flip: the modem's carriers swap their horizontal and vertical
        frequencies, which carry different chroma components."""
        return self.base != "modem"

    @property
    def multichannel(self) -> bool:
        """True for scenarios whose images are not 3-channel RGB (N-channel ``.npy`` arrays)."""
        return self.channels != 3

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
        distortion="dssim",
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
    "hdr16": Scenario(
        "hdr16",
        "4:2:0",
        3,
        1,
        "identity",
        (10, 90),
        "16-bit RGB through an 8-bit 4:2:0 JPEG",
        bit_depth=16,
    ),
    "hdr16-444": Scenario(
        "hdr16-444",
        "4:4:4",
        3,
        1,
        "identity",
        (10, 100),
        "16-bit RGB through an 8-bit 4:4:4 JPEG, up to quality 100",
        bit_depth=16,
    ),
    "normals": Scenario(
        "normals",
        "4:2:0",
        3,
        1,
        "identity",
        (10, 90),
        "a tangent-space normal map through 4:2:0 JPEG (data/material/normals)",
    ),
    "material6": Scenario(
        "material6",
        "4:2:0",
        3,
        1,
        "identity",
        (10, 90),
        "albedo + normals (6 channels) as two 4:2:0 JPEG planes in one file",
        channels=6,
        planes=2,
    ),
}


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise SandwichError(
            f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}"
        ) from None
