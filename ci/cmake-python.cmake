# CMake toolchain file that every CMake-built -sys crate of this workspace sees (through
# CMAKE_TOOLCHAIN_FILE in .cargo/config.toml, which the `cmake` crate passes on).
#
# Why: keystone-engine builds its own copy of LLVM 3.x, whose CMakeLists runs
# `include(FindPythonInterp)` to find a Python for `llvm-build`. FindPythonInterp tries
# `python2` first; on a machine where `python2` is a shim (pyenv) that exists but fails to run,
# it accepts the shim with an empty version and the configure step dies with
# `if given arguments: "VERSION_LESS" "2.7" Unknown arguments specified`.
#
# Fix: choose the interpreter ourselves, the first of python3, python, python2 that actually
# runs, and hand it over as PYTHON_EXECUTABLE (which FindPythonInterp respects). llvm-build
# works under Python 3. A PYTHON_EXECUTABLE given explicitly (-D or cache) wins if it runs; one
# that does not (a broken shim an earlier configure left in the cache) is replaced.
#
# This file sets nothing else: with no compiler given here CMake picks the host's default C and
# C++ compilers, as it would without a toolchain file for a native build.

function(_backcall_python_runs path out)
  set(${out} FALSE PARENT_SCOPE)
  if(path)
    execute_process(
      COMMAND "${path}" -c "import sys; sys.exit(0)"
      RESULT_VARIABLE status
      OUTPUT_QUIET ERROR_QUIET)
    if(status EQUAL 0)
      set(${out} TRUE PARENT_SCOPE)
    endif()
  endif()
endfunction()

_backcall_python_runs("${PYTHON_EXECUTABLE}" _backcall_ok)
if(NOT _backcall_ok)
  foreach(_backcall_name IN ITEMS python3 python python2)
    unset(_backcall_python CACHE)
    find_program(_backcall_python NAMES ${_backcall_name})
    _backcall_python_runs("${_backcall_python}" _backcall_ok)
    if(_backcall_ok)
      # FORCE: replaces a broken interpreter an earlier configure run left in the cache.
      set(PYTHON_EXECUTABLE "${_backcall_python}" CACHE FILEPATH
        "Python interpreter for LLVM's llvm-build (set by ci/cmake-python.cmake)" FORCE)
      break()
    endif()
  endforeach()
  unset(_backcall_python CACHE)
  unset(_backcall_name)
endif()
unset(_backcall_ok)
