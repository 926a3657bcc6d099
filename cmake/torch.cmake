# Finds LibTorch: QFAE_TORCH=debian (Debian's libtorch-dev 1.13, CPU; the default) or wheel (PyPI's
# torch in the environment that scripts/install-torch.sh makes, LibTorch 2.x built with CUDA, which
# CMake then compiles and links against the local CUDA toolkit). Also keeps {fmt} in one place.
set(QFAE_TORCH "debian" CACHE STRING "LibTorch to build with: debian or wheel")
set_property(CACHE QFAE_TORCH PROPERTY STRINGS debian wheel)
if(DEFINED ENV{QFAE_TORCH_VENV})
  set(QFAE_TORCH_VENV_DEFAULT "$ENV{QFAE_TORCH_VENV}")
else()
  set(QFAE_TORCH_VENV_DEFAULT "$ENV{HOME}/.cache/qfae/torch-venv")
endif()
set(QFAE_TORCH_VENV "${QFAE_TORCH_VENV_DEFAULT}" CACHE PATH
    "Python environment of scripts/install-torch.sh (PyPI's torch, timm)")
set(QFAE_VENV_PYTHON "${QFAE_TORCH_VENV}/bin/python")

if(QFAE_TORCH STREQUAL "wheel")
  if(NOT EXISTS "${QFAE_VENV_PYTHON}")
    message(FATAL_ERROR "QFAE_TORCH=wheel: no Python environment at ${QFAE_TORCH_VENV}; run "
                        "`bash scripts/install-torch.sh` (or set QFAE_TORCH_VENV)")
  endif()
  execute_process(COMMAND "${QFAE_VENV_PYTHON}" -c
                          "import torch; print(torch.utils.cmake_prefix_path, end='')"
                  OUTPUT_VARIABLE QFAE_TORCH_PREFIX RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "QFAE_TORCH=wheel: ${QFAE_VENV_PYTHON} cannot import torch: ${err}")
  endif()
  # The torch package folder too, so that its lib/ is searched before Debian's libtorch in /usr/lib.
  get_filename_component(QFAE_TORCH_ROOT "${QFAE_TORCH_PREFIX}/../.." ABSOLUTE)
  list(PREPEND CMAKE_PREFIX_PATH "${QFAE_TORCH_PREFIX}" "${QFAE_TORCH_ROOT}")
  # LibTorch's Caffe2 config finds the CUDA toolkit (nvcc, cuBLAS, cuDNN, NCCL) by itself; point it
  # at /usr/local/cuda when nvcc is not on PATH. Hopper (sm_90) is the default target.
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX}
     AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  if(NOT DEFINED ENV{TORCH_CUDA_ARCH_LIST} AND NOT TORCH_CUDA_ARCH_LIST)
    set(TORCH_CUDA_ARCH_LIST "9.0")
  endif()
  # LibTorch picks architectures from TORCH_CUDA_ARCH_LIST and warns about CMake's own variable,
  # which enabling CUDA sets by default: enable it here and drop that default.
  enable_language(CUDA)
  unset(CMAKE_CUDA_ARCHITECTURES)
  unset(CMAKE_CUDA_ARCHITECTURES CACHE)
  set(Python_EXECUTABLE "${QFAE_VENV_PYTHON}")
  # The wheel links kineto into libtorch_cpu; without this LibTorch's config warns it is missing.
  set(kineto_LIBRARY "${QFAE_TORCH_ROOT}/lib/libtorch_cpu.so" CACHE FILEPATH "kineto (in torch_cpu)")
elseif(NOT QFAE_TORCH STREQUAL "debian")
  message(FATAL_ERROR "QFAE_TORCH=${QFAE_TORCH}: expected debian or wheel")
endif()

find_package(Torch REQUIRED)
message(STATUS "LibTorch ${Torch_VERSION} (QFAE_TORCH=${QFAE_TORCH}) from ${TORCH_INSTALL_PREFIX}; "
               "CUDA: ${CAFFE2_USE_CUDA}${CUDAToolkit_VERSION}")

# PyTorch's wheel ships its own {fmt} (12.x) headers among LibTorch's include directories, ahead of
# /usr/include; Debian's shared spdlog is built against Debian's fmt 9. A folder holding only a link
# to Debian's fmt headers, searched first, makes every <fmt/...> (spdlog's, ours) Debian's, which the
# spdlog and fmt libraries we link were built with. LibTorch's own headers qfae includes use no fmt.
find_package(fmt REQUIRED)
get_target_property(QFAE_FMT_INCLUDE fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
find_path(QFAE_FMT_HEADER_DIR fmt/core.h PATHS ${QFAE_FMT_INCLUDE} NO_DEFAULT_PATH)
set(QFAE_FMT_SHIM "${CMAKE_BINARY_DIR}/fmt-shim")
file(MAKE_DIRECTORY "${QFAE_FMT_SHIM}")
file(CREATE_LINK "${QFAE_FMT_HEADER_DIR}/fmt" "${QFAE_FMT_SHIM}/fmt" SYMBOLIC)
function(qfae_fmt_from_one_place target)
  target_include_directories(${target} SYSTEM BEFORE PUBLIC "${QFAE_FMT_SHIM}")
  target_link_libraries(${target} PUBLIC fmt::fmt)
endfunction()

# PyPI's libtorch.so exports copies of libstdc++ functions it was linked with statically (its
# manylinux toolchain's libstdc++_nonshared), std::filesystem::remove_all among them; as a needed
# library ahead of libstdc++.so.6 they would take over our calls, and that copy of remove_all
# crashes here. Executables therefore name the system's libstdc++ first.
function(qfae_system_libstdcxx_first target)
  target_link_options(${target} PRIVATE "LINKER:--push-state,--no-as-needed" "-lstdc++"
                      "LINKER:--pop-state")
endfunction()
