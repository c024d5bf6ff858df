# Version file of the relrocheck CMake package. It is static on purpose: the package ships as
# plain files inside the Python package and nothing is generated at install time.
# tests/test_cmake.py asserts that PACKAGE_VERSION equals relrocheck.__version__, so this line
# cannot drift from the Python package.
set(PACKAGE_VERSION "0.1.0")

# Compatibility follows semantic versioning with its 0.x rule: below 1.0 a minor release may
# change add_relro_check(), so find_package(relrocheck 0.1) accepts 0.1.x only; from 1.0 on the
# major version decides. relrocheck is architecture independent (a host tool plus CMake code),
# so, unlike compiled packages, there is no CMAKE_SIZEOF_VOID_P check.
set(PACKAGE_VERSION_COMPATIBLE FALSE)
if(PACKAGE_FIND_VERSION_RANGE)
  # find_package(relrocheck 0.1...<0.3): any version inside the range is fine.
  if(NOT ((PACKAGE_FIND_VERSION_RANGE_MIN STREQUAL "INCLUDE"
             AND PACKAGE_VERSION VERSION_LESS PACKAGE_FIND_VERSION_MIN)
          OR (PACKAGE_FIND_VERSION_RANGE_MAX STREQUAL "INCLUDE"
             AND PACKAGE_VERSION VERSION_GREATER PACKAGE_FIND_VERSION_MAX)
          OR (PACKAGE_FIND_VERSION_RANGE_MAX STREQUAL "EXCLUDE"
             AND PACKAGE_VERSION VERSION_GREATER_EQUAL PACKAGE_FIND_VERSION_MAX)))
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
elseif("${PACKAGE_FIND_VERSION}" STREQUAL "")
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
elseif(PACKAGE_VERSION VERSION_GREATER_EQUAL PACKAGE_FIND_VERSION)
  string(REGEX MATCH "^[0-9]+" _relrocheck_major "${PACKAGE_VERSION}")
  string(REGEX MATCH "^[0-9]+\\.[0-9]+" _relrocheck_minor "${PACKAGE_VERSION}")
  if(_relrocheck_major EQUAL 0)
    # PACKAGE_FIND_VERSION_MINOR is 0 when the caller asked for "0" alone.
    if(PACKAGE_FIND_VERSION_MAJOR EQUAL 0
       AND _relrocheck_minor VERSION_EQUAL
           "${PACKAGE_FIND_VERSION_MAJOR}.${PACKAGE_FIND_VERSION_MINOR}")
      set(PACKAGE_VERSION_COMPATIBLE TRUE)
    endif()
  elseif(_relrocheck_major EQUAL PACKAGE_FIND_VERSION_MAJOR)
    set(PACKAGE_VERSION_COMPATIBLE TRUE)
  endif()
  if(PACKAGE_VERSION VERSION_EQUAL PACKAGE_FIND_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
  unset(_relrocheck_major)
  unset(_relrocheck_minor)
endif()
