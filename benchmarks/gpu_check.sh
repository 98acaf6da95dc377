#!/usr/bin/env bash
# One-command check of wmi on a CUDA machine (issue 17): the gpu-marked tests, wmi bench unet
# and train, a short wmi train (bf16, compile, channels_last) interrupted and resumed, wmi
# inpaint folder and wmi.models.export with its checkpoint. Prints one JSON summary on stdout
# (progress on stderr); exits 1 when any step failed.
#
#   bash benchmarks/gpu_check.sh             # the GPU box, about 8 minutes
#   bash benchmarks/gpu_check.sh --dry-run   # same steps, tiny sizes, CPU (about 2 minutes)
#   bash benchmarks/gpu_check.sh --keep DIR  # keep the work folder (logs, run, results)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# this checkout's wmi, not an installed one
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
