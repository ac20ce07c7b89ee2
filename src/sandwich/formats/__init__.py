"""File formats that sandwich writes: tags inside standard files and its own containers.

``jpeg_marker``: the APP11 segment that names the model inside a standard JPEG.
``sndr``: the progressive codec's container (header, CRC-checked chunks, cut anywhere).
"""
