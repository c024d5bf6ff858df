# CMake package of relrocheck, the post-link checker of load-time dirty memory in ELF libraries.
#
#   find_package(relrocheck 0.1 CONFIG REQUIRED)
#   add_relro_check(mylib POLICY relro.yaml BASELINE relro-baseline.txt)
#
# The package lives inside the Python package (`relrocheck --cmake-dir` prints this folder) and
# a copy of it is installed to <prefix>/share/cmake/relrocheck, where find_package() looks when
# <prefix>/bin is on PATH. Either copy finds the relrocheck command the same way, see
# _relrocheck_resolve_command() in RelroCheck.cmake.
#
# Results:
#   relrocheck_FOUND      TRUE when the relrocheck command runs (`relrocheck --version`).
#   relrocheck_VERSION    the version of this package (from relrocheckConfigVersion.cmake).
#   relrocheck_COMMAND    the command line add_relro_check() runs, a ;-list.
# Cache variable:
#   RELROCHECK_COMMAND    set it to override the command, e.g. "/opt/venv/bin/relrocheck" or
#                         "/usr/bin/python3;-m;relrocheck". Empty (the default) finds it.
#   RELROCHECK_ENABLE     ON (the default) checks; OFF makes add_relro_check() do nothing
#                         (one status line) and relrocheck need not run.

# OUTPUT with generator expressions (the per-configuration stamp of Ninja Multi-Config) and
# DEPFILE for Makefile generators both need CMake 3.20.
if(CMAKE_VERSION VERSION_LESS 3.20)
  set(relrocheck_FOUND FALSE)
  set(relrocheck_NOT_FOUND_MESSAGE
      "relrocheck needs CMake 3.20 or newer, this is CMake ${CMAKE_VERSION}")
  return()
endif()

# Functions record the policies in force where they are defined, so add_relro_check() behaves the
# same whatever cmake_minimum_required() the calling project declares (CMP0116: Ninja rewrites
# depfile paths relative to the build tree).
cmake_policy(PUSH)
cmake_policy(VERSION 3.20...3.31)
include("${CMAKE_CURRENT_LIST_DIR}/RelroCheck.cmake")
cmake_policy(POP)

set(RELROCHECK_COMMAND "" CACHE STRING
    "relrocheck command line (a ;-list) run by add_relro_check(); empty: next to the relrocheck \
CMake package, else on PATH, else python3 -m relrocheck")

set(RELROCHECK_ENABLE ON CACHE BOOL
    "run the relrocheck checks of add_relro_check(); OFF skips them all")
if(NOT RELROCHECK_ENABLE)
  # Nothing will run relrocheck: a missing or broken one must not stop the configure.
  set(relrocheck_COMMAND "")
  return()
endif()

_relrocheck_resolve_command(relrocheck_COMMAND _relrocheck_error)
if(_relrocheck_error)
  set(relrocheck_FOUND FALSE)
  set(relrocheck_NOT_FOUND_MESSAGE "${_relrocheck_error}")
endif()
unset(_relrocheck_error)
