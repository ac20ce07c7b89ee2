"""Media: images (and next, clips) as arrays and tensors, their colour spaces and their files.

``files`` reads and writes image files safely, ``color`` holds every colour transform,
``planes`` stacks several bottleneck planes into one codec image.
"""
