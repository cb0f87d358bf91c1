# Locates Python, OpenMM and LibTorch for the build and defines the imported targets
# OpenMMBG::OpenMM and OpenMMBG::LibTorch.
#
# LibTorch is linked through its CPU libraries (torch_cpu, c10) directly rather than through
# TorchConfig.cmake: the PyPI torch wheel is a CUDA build whose config requires a matching CUDA
# toolkit at configure time, which neither users' machines nor CI need for the CPU flow library.

# Without the Python wrappers (OPENMMBG_BUILD_PYTHON=OFF) Python is optional: it only locates the
# openmm and torch wheels when OPENMM_DIR / Torch_DIR do not say where OpenMM and LibTorch are.
if(OPENMMBG_BUILD_PYTHON)
  find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module)
else()
  find_package(Python3 QUIET COMPONENTS Interpreter)
endif()

function(_openmmbg_python_query out code)
  if(NOT Python3_EXECUTABLE)
    set(${out} "" PARENT_SCOPE)
    return()
  endif()
  execute_process(COMMAND ${Python3_EXECUTABLE} -c "${code}"
                  OUTPUT_VARIABLE value RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(rc EQUAL 0)
    set(${out} "${value}" PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

# find_path/find_library cache what they found, and a cached result is never searched again. When
# the place a dependency is searched in changes (another Python environment, OPENMM_DIR or
# Torch_DIR), forget the results found in the old place: otherwise a reconfigured tree would keep
# building against the old environment, or against paths that no longer exist.
function(_openmmbg_forget_when_location_changes key location)
  # A tree configured before this check has no recorded location: search again once.
  if(NOT "${_OPENMMBG_${key}_LOCATION}" STREQUAL "${location}")
    foreach(var IN LISTS ARGN)
      unset(${var} CACHE)
    endforeach()
  endif()
  set(_OPENMMBG_${key}_LOCATION "${location}" CACHE INTERNAL "where ${key} was last searched for")
endfunction()

# ---- OpenMM ----
if(NOT OPENMM_DIR AND DEFINED ENV{OPENMM_DIR})
  set(OPENMM_DIR $ENV{OPENMM_DIR})
endif()
if(NOT OPENMM_DIR)
  _openmmbg_python_query(_openmm_lib "import openmm.version as v; print(v.openmm_library_path)")
  if(_openmm_lib)
    get_filename_component(OPENMM_DIR "${_openmm_lib}" DIRECTORY)
  endif()
endif()
_openmmbg_forget_when_location_changes(OpenMM "${OPENMM_DIR}"
  OPENMM_INCLUDE_DIR OPENMM_LIBRARY OPENMM_PLUGIN_DIR OPENMM_CUDA_PLUGIN_DIR)
find_path(OPENMM_INCLUDE_DIR OpenMM.h HINTS ${OPENMM_DIR}/include PATH_SUFFIXES openmm NO_DEFAULT_PATH)
find_path(OPENMM_INCLUDE_DIR OpenMM.h PATH_SUFFIXES openmm)
# The architecture suffix finds a Debian-style prefix's library (OPENMM_DIR=/usr: /usr/lib/x86_64-linux-gnu).
find_library(OPENMM_LIBRARY OpenMM HINTS ${OPENMM_DIR}/lib PATH_SUFFIXES ${CMAKE_LIBRARY_ARCHITECTURE} NO_DEFAULT_PATH)
find_library(OPENMM_LIBRARY OpenMM)
if(NOT OPENMM_INCLUDE_DIR OR NOT OPENMM_LIBRARY)
  message(FATAL_ERROR "OpenMM not found: install the openmm wheel into ${Python3_EXECUTABLE}'s environment or set OPENMM_DIR")
endif()
get_filename_component(OPENMM_LIBRARY_DIR "${OPENMM_LIBRARY}" DIRECTORY)
# OpenMM's own platform plugins (CPU, OpenCL, ...): lib/plugins in wheels and upstream installs,
# lib/<multiarch>/openmm/plugins in Debian.
find_path(OPENMM_PLUGIN_DIR NAMES libOpenMMCPU.so libOpenMMOpenCL.so
          HINTS "${OPENMM_LIBRARY_DIR}/plugins" "${OPENMM_LIBRARY_DIR}/openmm/plugins" NO_DEFAULT_PATH)
if(NOT OPENMM_PLUGIN_DIR)
  set(OPENMM_PLUGIN_DIR "${OPENMM_LIBRARY_DIR}/plugins")
endif()
add_library(OpenMMBG::OpenMM SHARED IMPORTED)
set_target_properties(OpenMMBG::OpenMM PROPERTIES
  IMPORTED_LOCATION "${OPENMM_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${OPENMM_INCLUDE_DIR}")
message(STATUS "OpenMM: ${OPENMM_LIBRARY} (headers ${OPENMM_INCLUDE_DIR})")

# ---- LibTorch ----
if(NOT Torch_DIR AND DEFINED ENV{Torch_DIR})
  set(Torch_DIR $ENV{Torch_DIR})
endif()
set(_torch_prefix "")
if(Torch_DIR)
  # Accept either LibTorch's prefix or its Torch config directory: <prefix>/share/cmake/Torch
  # (LibTorch archives, the torch wheel) or <prefix>/lib/<multiarch>/cmake/Torch (Debian).
  foreach(_up "" "/../../.." "/../../../..")
    get_filename_component(_candidate "${Torch_DIR}${_up}" ABSOLUTE)
    if(EXISTS "${_candidate}/include/torch")
      set(_torch_prefix "${_candidate}")
      break()
    endif()
  endforeach()
else()
  _openmmbg_python_query(_torch_cmake "import torch.utils; print(torch.utils.cmake_prefix_path)")
  if(_torch_cmake)
    get_filename_component(_torch_prefix "${_torch_cmake}/../.." ABSOLUTE)
  endif()
endif()
_openmmbg_forget_when_location_changes(LibTorch "${_torch_prefix}"
  TORCH_INCLUDE_DIR ATEN_INCLUDE_DIR TORCH_CPU_LIBRARY C10_LIBRARY TORCH_CUDA_LIBRARY C10_CUDA_LIBRARY)
find_path(TORCH_INCLUDE_DIR torch/torch.h HINTS ${_torch_prefix}/include/torch/csrc/api/include NO_DEFAULT_PATH)
find_path(TORCH_INCLUDE_DIR torch/torch.h PATH_SUFFIXES torch/csrc/api/include)
find_path(ATEN_INCLUDE_DIR ATen/ATen.h HINTS ${_torch_prefix}/include NO_DEFAULT_PATH)
find_path(ATEN_INCLUDE_DIR ATen/ATen.h)
find_library(TORCH_CPU_LIBRARY torch_cpu HINTS ${_torch_prefix}/lib PATH_SUFFIXES ${CMAKE_LIBRARY_ARCHITECTURE} NO_DEFAULT_PATH)
find_library(TORCH_CPU_LIBRARY torch_cpu)
find_library(C10_LIBRARY c10 HINTS ${_torch_prefix}/lib PATH_SUFFIXES ${CMAKE_LIBRARY_ARCHITECTURE} NO_DEFAULT_PATH)
find_library(C10_LIBRARY c10)
if(NOT TORCH_INCLUDE_DIR OR NOT ATEN_INCLUDE_DIR OR NOT TORCH_CPU_LIBRARY OR NOT C10_LIBRARY)
  message(FATAL_ERROR "LibTorch not found: install the torch wheel into ${Python3_EXECUTABLE}'s environment or set Torch_DIR")
endif()
add_library(OpenMMBG::LibTorch INTERFACE IMPORTED)
set_target_properties(OpenMMBG::LibTorch PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES "${ATEN_INCLUDE_DIR};${TORCH_INCLUDE_DIR}"
  INTERFACE_LINK_LIBRARIES "${TORCH_CPU_LIBRARY};${C10_LIBRARY}"
  INTERFACE_COMPILE_DEFINITIONS "_GLIBCXX_USE_CXX11_ABI=1")
message(STATUS "LibTorch: ${TORCH_CPU_LIBRARY}")

# ---- Others from Debian ----
find_package(nlohmann_json 3 REQUIRED)
find_package(GTest REQUIRED)
find_package(benchmark QUIET)
if(OPENMMBG_BUILD_PYTHON)
  # Prefer the swig installed beside the project's Python (PyPI swig 4.5, the version that generated
  # the openmm wheel's wrappers: the SWIG runtimes must match for System.addForce to accept our Force).
  get_filename_component(_python_bin_dir "${Python3_EXECUTABLE}" DIRECTORY)
  find_program(SWIG_EXECUTABLE NAMES swig HINTS "${_python_bin_dir}" NO_DEFAULT_PATH)
  find_package(SWIG 4 REQUIRED)
  message(STATUS "SWIG: ${SWIG_EXECUTABLE} ${SWIG_VERSION}")
endif()

# LibTorch >= 2.10 headers require C++20 (torch/all.h errors out otherwise); 1.13 (Debian) builds
# as C++17. Targets that include LibTorch headers get the standard LibTorch needs; the rest of the
# project, and every public header free of torch, stays C++17.
file(READ "${TORCH_INCLUDE_DIR}/torch/all.h" _torch_all_h)
if(_torch_all_h MATCHES "C\\+\\+20 or later")
  set(OPENMMBG_TORCH_CXX_STANDARD 20)
else()
  set(OPENMMBG_TORCH_CXX_STANDARD 17)
endif()
set_property(TARGET OpenMMBG::LibTorch PROPERTY INTERFACE_COMPILE_FEATURES cxx_std_${OPENMMBG_TORCH_CXX_STANDARD})
message(STATUS "LibTorch headers need C++${OPENMMBG_TORCH_CXX_STANDARD}")
