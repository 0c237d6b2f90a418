"""Build script for rnnfast's compiled kernels.

Builds one extension, ``rnnfast._kernels``: the Cython binding (src/rnnfast/_kernels.pyx) linked
with the pure-C kernels in csrc/. OpenMP is used when the compiler supports it; otherwise the
build still succeeds, single-threaded, and says so. Metadata lives in pyproject.toml.

Environment knobs (all optional):
  RNNFAST_DISABLE_OPENMP=1   build without OpenMP even if the compiler has it
  RNNFAST_SANITIZE=1         build with -fsanitize=address,undefined (development only)
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))

# Never -ffast-math: it deletes isnan checks and flips flush-to-zero for the whole process.
BASE_CFLAGS = ["-O3", "-std=c11", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=fast", "-Wall",
               "-Wno-unused-function", "-Wno-unknown-pragmas"]
# Loops at 64-byte boundaries, when the compiler takes the flag: the products' inner loops are a
# few cache lines long, and where they fell otherwise depended on unrelated code before them in
# the file (an edit elsewhere in csrc/rf_mm.c moved them by 32 bytes and slowed every small
# shape's forward and backward by 8-14% on a Zen 3).
ALIGN_CFLAGS = ["-falign-loops=64"]


def _compiles(compiler, src, flags, link=False):
    """Compile (and, with link, link) the C program src with these extra flags; True if the
    compiler (and linker) take it. Any failure means no."""
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "check.c")
        with open(path, "w") as f:
            f.write(src)
        objs = compiler.compile([path], output_dir=tmp, extra_postargs=flags)
        if link:
            compiler.link_executable(objs, os.path.join(tmp, "check"), extra_postargs=flags)
        return True
    except Exception:  # any compiler or linker failure
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _compiler_accepts(compiler, flags):
    """True if the compiler takes these flags (on an empty function, warnings as errors)."""
    return _compiles(compiler, "int rnnfast_flag_check(void) { return 0; }\n", ["-Werror", *flags])


def _compiler_has_openmp(compiler):
    """Compile and link a tiny OpenMP program with this compiler; True if it works."""
    src = "#include <omp.h>\nint main(void){int n=0;\n#pragma omp parallel reduction(+:n)\nn+=1;\nreturn n>0?0:1;}\n"
    return _compiles(compiler, src, ["-fopenmp"], link=True)


class BuildExt(build_ext):
    def build_extensions(self):
        use_omp = os.environ.get("RNNFAST_DISABLE_OPENMP", "0") in ("", "0")
        if use_omp and not _compiler_has_openmp(self.compiler):
            use_omp = False
            print("rnnfast: the compiler has no usable OpenMP; building single-threaded kernels",
                  file=sys.stderr)
        sanitize = os.environ.get("RNNFAST_SANITIZE", "0") not in ("", "0")
        align = ALIGN_CFLAGS if _compiler_accepts(self.compiler, ALIGN_CFLAGS) else []
        if not align:
            print(f"rnnfast: the compiler does not take {' '.join(ALIGN_CFLAGS)}; building without "
                  "it (the kernels' speed may then vary from build to build by a few percent)",
                  file=sys.stderr)
        for ext in self.extensions:
            ext.extra_compile_args = list(BASE_CFLAGS) + align
            ext.extra_link_args = []
            if use_omp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
                ext.define_macros.append(("RNNFAST_OPENMP", "1"))
            if sanitize:
                flags = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-O1", "-g"]
                ext.extra_compile_args += flags
                ext.extra_link_args += ["-fsanitize=address,undefined"]
        print(f"rnnfast: building with OpenMP {'on' if use_omp else 'OFF'}", file=sys.stderr)
        super().build_extensions()


c_sources = sorted(glob.glob(os.path.join("csrc", "*.c")))
extensions = [
    Extension(
        "rnnfast._kernels",
        sources=[os.path.join("src", "rnnfast", "_kernels.pyx")] + c_sources,
        include_dirs=[numpy.get_include(), "csrc"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=glob.glob(os.path.join("csrc", "*.h")),
    )
]

# The public C headers ship inside the package so that Cython projects that cimport
# rnnfast._kernels (and C projects) can find them through rnnfast.get_include(). The rf_*.h
# headers are the kernels' internals and stay out.
PUBLIC_HEADERS = ("rnnfast.h", "rnnfast_blas.h")
_inc = os.path.join(HERE, "src", "rnnfast", "include")
os.makedirs(_inc, exist_ok=True)
for name in os.listdir(_inc):
    if name not in PUBLIC_HEADERS:
        os.remove(os.path.join(_inc, name))
for name in PUBLIC_HEADERS:
    shutil.copy(os.path.join(HERE, "csrc", name), _inc)

setup(
    ext_modules=cythonize(extensions, language_level=3,
                          compiler_directives={"boundscheck": False, "wraparound": False,
                                               "cdivision": True, "initializedcheck": False}),
    cmdclass={"build_ext": BuildExt},
)
