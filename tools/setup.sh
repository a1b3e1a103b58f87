#!/bin/sh
# The system packages cao2 needs on Debian/Ubuntu (libtorch, OpenBLAS, PyTorch and torchvision for the parity
# fixtures and the ImageFolder check, Fashion-MNIST, a C++ toolchain for the addon). Runs as root (a minimal image
# has no sudo) or as a user with sudo; then `npm ci` builds cao2. Packages given as arguments are installed too
# (.ci/run adds chromium for the report's browser test, slurm-wlm and munge for the Slurm test).
set -eu
PACKAGES="libtorch-dev libopenblas-dev python3 python3-torch python3-torchvision dataset-fashion-mnist g++ make $*"
if [ "$(id -u)" -eq 0 ]; then
  as_root() { DEBIAN_FRONTEND=noninteractive "$@"; }
elif command -v sudo >/dev/null 2>&1; then
  as_root() { sudo DEBIAN_FRONTEND=noninteractive "$@"; }
else
  echo "tools/setup.sh: installing system packages needs root: run it as root, or as a user with sudo" >&2
  exit 2
fi
as_root apt-get update
# shellcheck disable=SC2086 # the list is split into packages on purpose
as_root apt-get install -y --no-install-recommends $PACKAGES
