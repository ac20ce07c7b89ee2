"""The differentiable video proxy (x264 / x265 twin): :class:`VideoProxy`, its motion
(:mod:`.flow`), synthetic calibration clips (:mod:`.clips`) and calibration (:mod:`.calibrate`).
"""

from __future__ import annotations

from sandwich.proxies.video.flow import clip_flow, scale_flow, warp
from sandwich.proxies.video.proxy import VideoProxy, qstep, video_proxy, video_proxy_parts

__all__ = [
    "VideoProxy",
    "clip_flow",
    "qstep",
    "scale_flow",
    "video_proxy",
    "video_proxy_parts",
    "warp",
]
