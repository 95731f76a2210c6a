#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py), from the repository root.
#
#   make gpu-bundle        # here, once: wheels + the MeteoSwiss and OPERA files into .gpu/
#   bash benchmarks/gpu_check.sh --out "$OUT"      # on the GPU machine (device tool, carry .gpu)
#   bash benchmarks/gpu_check.sh --dry-run --out /tmp/gpu-check   # toy sizes on this CPU (CI)
#
# On the GPU machine it installs .gpu/wheels (what its image lacks: Keras, pySTEPS, dask, ...;
# benchmarks/gpu_requirements.txt) into a private folder with no network, puts the repository
# on PYTHONPATH and runs the check under a limit of NOWCAST_GPU_TIMEOUT seconds (470: the
# device tool's 8 minutes with room to spare). A dry run uses the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
case " $* " in *" --dry-run "*) dry=1 ;; *) dry=0 ;; esac
if [ "$dry" = 1 ] && [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
elif [ -d .gpu/wheels ] && ls .gpu/wheels/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/nowcast-gpu-site .gpu/wheels/*.whl
  if ls .gpu/wheels/*.tar.gz >/dev/null 2>&1; then  # sources (pySTEPS): built with the image's
    python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir \
      --target /tmp/nowcast-gpu-site .gpu/wheels/*.tar.gz  # setuptools, Cython and numpy
  fi
  export PYTHONPATH="/tmp/nowcast-gpu-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
exec timeout "${NOWCAST_GPU_TIMEOUT:-470}" "$PY" benchmarks/gpu_check.py "$@"
