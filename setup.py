"""The one thing pyproject.toml cannot say: the optional compiled kernels.

kernels/ holds compiled twins of the per-relocation loops, built into relrocheck._kernels
(relrocheck/native.py says which functions they stand in for). The extension is optional:
where no C compiler or no Python headers are at hand the install goes on without it, and
relrocheck runs its pure-Python twins, which give the same results more slowly.
"""

from glob import glob

from setuptools import Extension, setup

setup(ext_modules=[Extension("relrocheck._kernels", sorted(glob("kernels/*.c")),
                             depends=glob("kernels/*.h"), optional=True)])
