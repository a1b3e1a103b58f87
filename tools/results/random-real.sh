#!/usr/bin/env bash
# Random-real baseline numbers for docs/results.md: Fashion-MNIST, IPC 1/10/50 random real training images per class
# (one selection, seed 0), hard-label protocol with ConvNet-3, 3 repeats, the fashion-mnist preset's schedule.
# Resumable: a run whose JSON record exists is skipped, so rerun the script after an interruption.
#   tools/results/random-real.sh                 # all three
#   IPCS="1 10" tools/results/random-real.sh      # some of them
# Records go to docs/results/random-real/ (small, committed); the image folders to .runs/random-real/ (ignored).
set -euo pipefail
cd "$(dirname "$0")/../.."
# glibc's dynamic mmap threshold makes the resident size of a long libtorch training loop grow without bound here
# (about 19 MB per ConvNet-3 step at batch 64; an IPC-10 run was OOM-killed at 11.5 GB). A fixed threshold keeps it
# flat (244 MB) at no cost in speed. See docs/evaluation.md.
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-131072}
CAO2=(node dist/src/cli/main.js)
RECORDS=docs/results/random-real
DATA=.runs/random-real
mkdir -p "$RECORDS" "$DATA"
for ipc in ${IPCS:-1 10 50}; do
  json="$RECORDS/hard-convnet3-ipc$ipc.json"
  if [ -f "$json" ]; then echo "skip IPC $ipc: $json exists"; continue; fi
  data="$DATA/ipc$ipc"
  [ -f "$data/manifest.json" ] || "${CAO2[@]}" baseline random-real --data fashion-mnist --ipc "$ipc" --seed 0 --out "$data"
  "${CAO2[@]}" evaluate --data "$data" --test fashion-mnist --protocol hard --arch convnet3 --repeats 3 --seed 0 --json "$json"
done
