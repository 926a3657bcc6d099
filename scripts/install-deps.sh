#!/usr/bin/env bash
# Installs the Debian 12 packages qfae builds and tests with. Idempotent; run as root (or with sudo).
set -euo pipefail

packages=(
  cmake g++ ninja-build pkg-config ccache
  python3 python3-venv  # scripts/install-torch.sh: the PyPI LibTorch (CUDA) build's environment
  # OpenBLAS on OpenMP: LibTorch's OpenMP threads and OpenBLAS then share one pool. With
  # libopenblas0-pthread's own pool the two fight for the cores (2 to 5 times slower steps).
  libtorch-dev libopenblas0-openmp
  libgloo-dev  # the headers of LibTorch's Gloo process group (data-parallel training)
  libopencv-dev libcli11-dev nlohmann-json3-dev libspdlog-dev libyaml-cpp-dev libgtest-dev
  libnifti2-dev  # optional at build time: NIfTI volumes for qfae prepare --from/--volume
  libgdcm-dev    # optional at build time: DICOM files (libopencv-dev brings it too)
  mricron-data   # the Colin27 brain (/usr/share/mricron/templates/ch2bet.nii.gz) for the demo
)
for arg in "$@"; do
  case "$arg" in
    # What scripts/fixtures/make_test_backbones.py needs (Debian's PyTorch 1.13).
    --with-python) packages+=(python3 python3-torch python3-numpy) ;;
    # What tests/scripts/test_sweep_slurm.sh needs to run a sweep through a private one-node
    # Slurm (22.05; ~13 MB, ~11 s); without them it checks the batch scripts only. The system's
    # slurmd/slurmctld services stay off (no /etc/slurm/slurm.conf); munge's starts.
    --with-slurm) packages+=(slurmctld slurmd slurm-client munge) ;;
    # What tests/scripts/test_report_browser.py opens the report pages with: headless Chromium,
    # its driver and Selenium (~100 MB with their libraries).
    --with-browser) packages+=(chromium chromium-driver python3-selenium) ;;
    *) echo "[install-deps] unknown option '$arg' (--with-python, --with-slurm, --with-browser)" >&2
       exit 2 ;;
  esac
done

# Debian picks the BLAS through alternatives, libopenblas0-pthread first when both are
# installed: select the OpenMP build for the three names LibTorch loads.
select_openblas_openmp() {
  local dir=/usr/lib/x86_64-linux-gnu/openblas-openmp changed=()
  [[ -d $dir ]] || return 0
  for name in libblas.so.3 liblapack.so.3 libopenblas.so.0; do
    local alt=$name-x86_64-linux-gnu
    [[ $(update-alternatives --query "$alt" 2>/dev/null | sed -n 's/^Value: //p') == "$dir/$name" ]] &&
      continue
    "${sudo_cmd[@]}" update-alternatives --quiet --set "$alt" "$dir/$name"
    changed+=("$name")
  done
  ((${#changed[@]} == 0)) ||
    echo "[install-deps] selected OpenBLAS on OpenMP ($dir) for ${changed[*]} (update-alternatives)"
}

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "[install-deps] all ${#packages[@]} packages present"
  select_openblas_openmp
  exit 0
fi
echo "[install-deps] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "[install-deps] done"
select_openblas_openmp
