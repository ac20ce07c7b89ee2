"""Recorded outputs of every zoo model on the bundled sample, to prove refactors change nothing.

``python tests/golden.py`` (re)writes ``tests/data/golden.json``: for every zoo model, the SHA-256
of the file it compresses the bundled sample to and of the array it decodes back, plus a few
decoding variants (self-ensemble, a progressive file cut short). ``tests/test_golden.py`` compares
the installed code against the recorded file. Rerecord only for an intended change of behaviour,
and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "data" / "golden.json"
QUALITY = 50


def _sha(data: bytes | np.ndarray) -> str:
    if isinstance(data, np.ndarray):
        head = f"{data.dtype.str}{data.shape}".encode()
        data = head + np.ascontiguousarray(data).tobytes()
    return hashlib.sha256(data).hexdigest()


def sample_inputs() -> dict[str, np.ndarray]:
    """The bundled sample as each kind of model takes it: 8-bit RGB, 16-bit RGB (8-bit values
    scaled by 257 plus a fixed low-order pattern, so the extra bits matter), and 6 channels
    (the sample beside its 180-degree rotation)."""
    from importlib import resources

    from PIL import Image

    with Image.open(str(resources.files("sandwich") / "assets" / "sample.png")) as im:
        rgb = np.asarray(im.convert("RGB"))
    h, w = rgb.shape[:2]
    pattern = (np.arange(h * w * 3, dtype=np.int64).reshape(h, w, 3) * 37) % 257
    deep = (rgb.astype(np.uint16) * 257 + pattern.astype(np.uint16)).clip(0, 65535)
    six = np.concatenate([rgb, rgb[::-1, ::-1]], axis=2)
    return {"rgb": rgb, "rgb16": deep.astype(np.uint16), "six": np.ascontiguousarray(six)}


def record() -> dict[str, dict[str, str]]:
    import torch

    # one thread: float32 convolutions split over threads may round a few samples differently
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _record_all()
    finally:
        torch.set_num_threads(threads)


def _record_all() -> dict[str, dict[str, str]]:
    from sandwich.zoo import ZOO, load_model

    inputs = sample_inputs()
    out: dict[str, dict[str, str]] = {}
    for name in ZOO:
        net = load_model(name)
        row: dict[str, str] = {}
        if hasattr(net, "encode_clip"):  # progressive video: 3 moving crops, motion, 3 iterations
            from sandwich.formats.sndv import truncate as cut_clip

            rgb = inputs["rgb"]
            clip = np.stack(
                [rgb[8 + 2 * i : 72 + 2 * i, 4 + 3 * i : 100 + 3 * i] for i in range(3)]
            )
            net.configure(prediction="motion")
            data = net.compress(clip, 3)
            row["file"] = _sha(data)
            row["decoded"] = _sha(net.decompress(data))
            row["decoded_cut1"] = _sha(net.decompress(cut_clip(data, 1)))
        elif net.media == "clip":  # the networks alone (the encoder's bytes depend on its build)
            frame = inputs["rgb"]
            b = net.bottleneck_image(frame, 28)
            row["bottleneck"] = _sha(b)
            row["decoded"] = _sha(net.reconstruct(b, frame.shape[:2], 28.0))
        elif hasattr(net, "decode_file"):  # progressive: 4 iterations, and the file cut to 2
            from sandwich.formats.sndr import truncate

            data = net.compress(inputs["rgb"], 4)
            row["file"] = _sha(data)
            row["decoded"] = _sha(net.decompress(data))
            row["decoded_cut2"] = _sha(net.decompress(truncate(data, 2)))
        else:
            sc = net.scenario
            img = (
                inputs["six"]
                if sc.channels == 6
                else inputs["rgb16" if sc.bit_depth > 8 else "rgb"]
            )
            data = net.compress(img, QUALITY)
            row["file"] = _sha(data)
            row["decoded"] = _sha(net.decompress(data))
            if name in ("rgb-jpeg", "gray-jpeg"):
                net.ensemble = 8 if sc.transposable else 4
                row["decoded_ensemble"] = _sha(net.decompress(data))
                net.ensemble = 1
        out[name] = row
        print(name, row, file=sys.stderr)
    return out


if __name__ == "__main__":
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
