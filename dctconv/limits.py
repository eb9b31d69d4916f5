"""Constants shared by the library and the command line, in a module that imports nothing.

``dctconv --help`` shows several of these without importing numpy, so they live
here rather than beside the code that enforces them.
"""

#: Smallest and largest block size n (the patch side); the transform has n*n kernels.
MIN_BLOCK_SIZE = 2
MAX_BLOCK_SIZE = 64

#: Block size of the library functions and of ``transform`` and ``compress``.
DEFAULT_BLOCK_SIZE = 4

#: Block sizes ``dctconv verify`` checks when not given one.
DEFAULT_VERIFY_BLOCK_SIZES = (2, 4, 8)

#: Largest image read or reconstructed by default, in pixels: Pillow's own
#: decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS``).
DEFAULT_MAX_PIXELS = 89_478_485

#: "from 2 to 64", as messages and help texts say it.
BLOCK_SIZE_RANGE = f"from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE}"
