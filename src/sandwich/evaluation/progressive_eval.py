"""The progressive codec per iteration, next to 4:2:0 JPEG at the same rate.

Every image is compressed once with all iterations; the file cut after k iterations
(:func:`sandwich.formats.sndr.truncate`) gives the k-iteration point, with bpp counted from the
whole file (header and checksums included). JPEG is swept over qualities and interpolated (in
bpp, per image) to the codec's bpp, so both columns stand at the same rate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from sandwich.evaluation.baselines import JpegBaseline
from sandwich.evaluation.metrics import ms_ssim, psnr
from sandwich.evaluation.quality import to_db as msssim_db

JPEG_QUALITIES = [1, 2, 3, 4, *range(5, 96, 5)]


def codec_rows(model, images: dict[str, np.ndarray], progress: Callable | None = None) -> list:
    """One row per (image, iteration): bpp of the whole file, raw code bpp, PSNR, MS-SSIM."""
    from sandwich.formats.sndr import truncate, unpack

    rows = []
    for name, img in images.items():
        H, W = img.shape[:2]
        full = model.compress(img)
        recs, _ = model.decode_file(full)
        _, chunks, _ = unpack(full)
        h, w = -(-H // 16), -(-W // 16)
        for k, rec in enumerate(recs, start=1):
            data = truncate(full, k)
            payload = 8 * sum(len(c) for c in chunks[:k])
            raw = model.cfg.bits * h * w * k
            rows.append(
                {
                    "image": name,
                    "iterations": k,
                    "bits": 8 * len(data),
                    "bpp": 8 * len(data) / (H * W),
                    "raw_bpp": raw / (H * W),
                    "payload_bits": payload,
                    "raw_bits": raw,
                    "psnr": psnr(img, rec),
                    "msssim": ms_ssim(img, rec),
                }
            )
        if progress is not None:
            progress()
    return rows


def jpeg_rows(images: dict[str, np.ndarray], qualities=None, progress=None) -> list[dict]:
    """One row per (image, quality) of 4:2:0 JPEG: bpp, PSNR, MS-SSIM."""
    jpeg = JpegBaseline("4:2:0")
    rows = []
    for name, img in images.items():
        for q in qualities or JPEG_QUALITIES:
            data, rec = jpeg.roundtrip(img, q)
            rows.append(
                {
                    "image": name,
                    "quality": q,
                    "bpp": 8 * len(data) / (img.shape[0] * img.shape[1]),
                    "psnr": psnr(img, rec),
                    "msssim": ms_ssim(img, rec),
                }
            )
        if progress is not None:
            progress()
    return rows


def _jpeg_at(jrows: list[dict], image: str, bpp: float, key: str) -> float:
    pts = sorted((r["bpp"], r[key]) for r in jrows if r["image"] == image)
    xs, ys = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    if key == "msssim":
        ys = np.array([msssim_db(v) for v in ys])
        v = float(np.interp(bpp, xs, ys))
        return 1.0 - 10 ** (-v / 10)
    return float(np.interp(bpp, xs, ys))


def per_iteration_table(crows: list[dict], jrows: list[dict]) -> list[dict]:
    """Mean over images per iteration, with JPEG interpolated at each image's bpp."""
    table = []
    for k in sorted({r["iterations"] for r in crows}):
        rs = [r for r in crows if r["iterations"] == k]
        bpp = float(np.mean([r["bpp"] for r in rs]))
        table.append(
            {
                "iterations": k,
                "bpp": bpp,
                "raw_bpp": float(np.mean([r["raw_bpp"] for r in rs])),
                "ratio": 24.0 / bpp,
                "entropy_saving_pct": 100.0
                * (1 - sum(r["payload_bits"] for r in rs) / sum(r["raw_bits"] for r in rs)),
                "msssim": float(np.mean([r["msssim"] for r in rs])),
                "psnr": float(np.mean([r["psnr"] for r in rs])),
                "jpeg_msssim": float(
                    np.mean([_jpeg_at(jrows, r["image"], r["bpp"], "msssim") for r in rs])
                ),
                "jpeg_psnr": float(
                    np.mean([_jpeg_at(jrows, r["image"], r["bpp"], "psnr") for r in rs])
                ),
                # images where even JPEG quality 1 makes a larger file: JPEG's value is then
                # that of its smallest file, at a higher rate than the codec's
                "jpeg_out_of_range": sum(
                    r["bpp"] < min(j["bpp"] for j in jrows if j["image"] == r["image"]) for r in rs
                ),
            }
        )
    return table


def bd_rate_msssim(
    crows: list[dict], jrows: list[dict], lo: float = 0.25, hi: float = 1.0
) -> float:
    """BD-rate (%) of the codec against JPEG in MS-SSIM (dB scale), over lo..hi bpp.

    Both mean curves are restricted to lo..hi (with the points just outside, so the range is
    covered); negative = the codec needs fewer bits. NaN if the curves do not overlap.
    """
    import bjontegaard as bdm

    def mean(rows, key):
        ks = sorted({r[key] for r in rows})
        b = [float(np.mean([r["bpp"] for r in rows if r[key] == k])) for k in ks]
        m = [msssim_db(float(np.mean([r["msssim"] for r in rows if r[key] == k]))) for k in ks]
        return np.array(b), np.array(m)

    def clip(b, m):
        inside = np.where((b >= lo) & (b <= hi))[0]
        if len(inside) == 0:
            return b[:0], m[:0]
        i0, i1 = max(0, inside[0] - 1), min(len(b) - 1, inside[-1] + 1)
        return b[i0 : i1 + 1], m[i0 : i1 + 1]

    jb, jm = clip(*mean(jrows, "quality"))
    cb, cm = clip(*mean(crows, "iterations"))
    if len(jb) < 4 or len(cb) < 4:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(bdm.bd_rate(jb, jm, cb, cm, method="akima", require_matching_points=False))
        except (ValueError, ArithmeticError, IndexError):
            return float("nan")


class ProgressivePipeline:
    """A progressive model in rate-distortion sweeps: the knob is the number of iterations.

    ``roundtrip(image, k)`` returns the file cut after k iterations and its reconstruction, like
    the quality-driven pipelines of :mod:`sandwich.evaluation.baselines`. The whole-file encoding
    of the last image is cached, so a sweep over k encodes each image once.
    """

    def __init__(self, model, name: str):
        self.model, self.name = model, name
        self.knobs = list(range(1, model.cfg.max_iterations + 1))
        self._cache: tuple[int, bytes, list[np.ndarray]] | None = None

    def roundtrip(self, image: np.ndarray, iterations: int) -> tuple[bytes, np.ndarray]:
        from sandwich.formats.sndr import truncate

        key = hash(image.tobytes())
        if self._cache is None or self._cache[0] != key:
            full = self.model.compress(image)
            self._cache = (key, full, self.model.decode_file(full)[0])
        _, full, recs = self._cache
        return truncate(full, iterations), recs[iterations - 1]


def markdown_table(
    model: str, images: list[str], table: list[dict], bd: float, bd_range: tuple[float, float]
) -> str:
    """The per-iteration table of ``sandwich bench rnn`` as Markdown."""
    lines = [
        f"Model `{model}`, mean over {len(images)} image(s): {', '.join(images)}.",
        "bpp counts the whole file (header, lengths, checksums); raw bpp is 32 bits per 16x16",
        "block per iteration before entropy coding; JPEG is 4:2:0 interpolated to the same bpp.",
        "",
        "| iterations | bpp | raw bpp | ratio | entropy coding saves | MS-SSIM | PSNR (dB) "
        "| JPEG MS-SSIM | JPEG PSNR (dB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table:
        star = f" ({r['jpeg_out_of_range']}*)" if r["jpeg_out_of_range"] else ""
        lines.append(
            f"| {r['iterations']} | {r['bpp']:.3f} | {r['raw_bpp']:.3f} | {r['ratio']:.1f}:1 "
            f"| {r['entropy_saving_pct']:.1f}% | {r['msssim']:.4f} | {r['psnr']:.2f} "
            f"| {r['jpeg_msssim']:.4f}{star} | {r['jpeg_psnr']:.2f}{star} |"
        )
    lo, hi = bd_range
    lines += [
        "",
        "(k*): on k images even JPEG quality 1 makes a larger file than this; JPEG's value there "
        "is that of its smallest file, at a higher rate.",
        "",
        f"BD-rate (MS-SSIM, dB scale) against 4:2:0 JPEG over {lo}-{hi} bpp: {bd:+.1f}%",
    ]
    return "\n".join(lines) + "\n"
