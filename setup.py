"""Builds the C kernels (probe/_kernels.c and probe/_auroc_kernels.c: search;
probe/_recorder_kernels.c: the recorder) into one library; everything else is in
pyproject.toml.

Optional: where no C compiler is at hand the install still works, and torch does the work.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "probe._kernels",
            ["probe/_kernels.c", "probe/_auroc_kernels.c", "probe/_recorder_kernels.c"],
            depends=["probe/_kernels.h"],
            extra_compile_args=["-O3"],
            optional=True,
        )
    ]
)
