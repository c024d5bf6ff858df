"""The one thing pyproject.toml cannot say: the optional compiled kernels.

relrocheck/_kernels.c holds compiled twins of the per-relocation loops (relrocheck/native.py
says which). It is optional: where no C compiler is at hand the install goes on without it
and relrocheck runs its pure-Python versions, which give the same results more slowly.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("relrocheck._kernels", ["relrocheck/_kernels.c"],
                             optional=True)])
