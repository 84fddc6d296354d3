"""Builds search's C kernels (probe/_kernels.c); everything else is in pyproject.toml.

Optional: where no C compiler is at hand the install still works, and search uses torch.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("probe._kernels", ["probe/_kernels.c"], extra_compile_args=["-O3"], optional=True)
    ]
)
