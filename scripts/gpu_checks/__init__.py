"""The one-command GPU check (``scripts/gpu_check.py``), split by check so each module stays small.

Modules: :mod:`deps` (offline wheels from ``.gpu-deps/``, stdlib only: it runs before transformers is
imported), :mod:`common` (sizes, duck-typed configs, the random-weight model folder, provenance),
:mod:`packing_check` (checks 1 and the SDPA kernels), :mod:`train_check` (checks 2 and 3) and
:mod:`perf_check` (checks 4 and 5).
"""
