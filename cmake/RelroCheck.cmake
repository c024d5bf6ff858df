# add_relro_check(): run `relrocheck check` on a library after it links, as part of the build.
# Included by relrocheckConfig.cmake; use find_package(relrocheck CONFIG) rather than this file.
#
#   add_relro_check(<target>
#                   [POLICY <file>]      relrocheck policy (YAML); relative to this directory
#                   [BASELINE <file>]    baseline file; relative to this directory. Without it the
#                                        policy says where the baseline lives (its baseline.file,
#                                        default relro-baseline.json beside the policy); without
#                                        either it is relro-baseline.json in this directory.
#                   [ARGS <arg>...]      more arguments for `relrocheck check`
#                   [NO_ALL]             not part of the default build; build relro-check-<target>
#                   [TEST])              also register a CTest test relrocheck.<target> (label relro)
#
# Targets it creates:
#   relro-check-<target>            checks <target>; in ALL unless NO_ALL
#   relro-baseline-update-<target>  rewrites the baseline entry of <target>
#   relro-baseline-update           rewrites the baseline entries of every checked target
#
# Why a stamp-producing custom command wrapped in a custom target, not a POST_BUILD step:
# - the check's only OUTPUT is its stamp, so a failing check never touches the library: Makefiles
#   delete the outputs of a failed rule (and a failed POST_BUILD is part of the link rule), and
#   Ninja would relink a library whose POST_BUILD step failed on every build;
# - the stamp is written by relrocheck only on success and is newer than its inputs, so a no-op
#   rebuild runs nothing (Ninja: "no work to do"), while a relink or an edited policy or baseline
#   reruns the check;
# - a custom command may depend on a target of any directory, a POST_BUILD step only on a target
#   of its own.

# Says in <out_command> how to run relrocheck, or in <out_error> why it cannot be run.
# Order: the RELROCHECK_COMMAND cache variable; the relrocheck script in the bin/ folder of the
# Python environment this CMake package was installed into (so a build uses the relrocheck its
# find_package() found, not whichever one comes first on PATH); relrocheck on PATH (an editable
# install's package lives in the source tree, far from its environment); `python3 -m relrocheck`.
function(_relrocheck_resolve_command out_command out_error)
  set(command "${RELROCHECK_COMMAND}")
  if("${command}" STREQUAL "")
    get_property(command GLOBAL PROPERTY RELROCHECK_FOUND_COMMAND)
  endif()
  if("${command}" STREQUAL "")
    # This file sits either in <prefix>/share/cmake/relrocheck (the copy find_package() finds
    # through PATH) or in <prefix>/lib/pythonX.Y/site-packages/relrocheck/cmake (the package
    # data; Debian's system Python uses lib/python3/dist-packages).
    set(here "${CMAKE_CURRENT_FUNCTION_LIST_DIR}")
    set(prefix "")
    if(here MATCHES "^(.+)/share/cmake/relrocheck$")
      set(prefix "${CMAKE_MATCH_1}")
    elseif(here MATCHES "^(.+)/lib[^/]*/python[^/]*/(site|dist)-packages/relrocheck/cmake$")
      set(prefix "${CMAKE_MATCH_1}")
    endif()
    if(NOT "${prefix}" STREQUAL "" AND EXISTS "${prefix}/bin/relrocheck"
       AND NOT IS_DIRECTORY "${prefix}/bin/relrocheck")
      set(command "${prefix}/bin/relrocheck")
    else()
      # relrocheck is a host tool: a cross-compiling toolchain's CMAKE_FIND_ROOT_PATH (the
      # target sysroot) is the wrong place to look for it.
      find_program(_relrocheck_program relrocheck NO_CMAKE_FIND_ROOT_PATH)
      set(program "${_relrocheck_program}")
      unset(_relrocheck_program CACHE)
      if(program)
        set(command "${program}")
      else()
        set(python "")
        if(NOT "${prefix}" STREQUAL "" AND EXISTS "${prefix}/bin/python3")
          set(python "${prefix}/bin/python3")
        else()
          find_program(_relrocheck_python NAMES python3 python NO_CMAKE_FIND_ROOT_PATH)
          set(python "${_relrocheck_python}")
          unset(_relrocheck_python CACHE)
        endif()
        if(python)
          set(command "${python}" -m relrocheck)
        endif()
      endif()
    endif()
    if("${command}" STREQUAL "")
      set(${out_command} "" PARENT_SCOPE)
      set(${out_error} "found neither relrocheck nor python3; set RELROCHECK_COMMAND" PARENT_SCOPE)
      return()
    endif()
  endif()

  # Run it once per configure and command line, so a broken or missing relrocheck fails at
  # find_package() with its own message, not later in the middle of a build.
  get_property(verified GLOBAL PROPERTY RELROCHECK_VERIFIED_COMMAND)
  if(NOT "${verified}" STREQUAL "${command}")
    execute_process(COMMAND ${command} --version
                    RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
    if(NOT result EQUAL 0)
      string(REPLACE ";" " " shown "${command}")
      string(STRIP "${output}" output)
      set(${out_command} "" PARENT_SCOPE)
      set(${out_error} "`${shown} --version` failed (${result}): ${output}
Install relrocheck into this environment or set RELROCHECK_COMMAND." PARENT_SCOPE)
      return()
    endif()
    set_property(GLOBAL PROPERTY RELROCHECK_VERIFIED_COMMAND "${command}")
  endif()
  if("${RELROCHECK_COMMAND}" STREQUAL "")
    set_property(GLOBAL PROPERTY RELROCHECK_FOUND_COMMAND "${command}")
  endif()
  set(${out_command} "${command}" PARENT_SCOPE)
  set(${out_error} "" PARENT_SCOPE)
endfunction()

function(add_relro_check target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_ALL;TEST" "POLICY;BASELINE" "ARGS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "add_relro_check(${target}): unknown arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  foreach(keyword IN ITEMS POLICY BASELINE)
    if(keyword IN_LIST arg_KEYWORDS_MISSING_VALUES)
      message(FATAL_ERROR "add_relro_check(${target}): ${keyword} needs a file")
    endif()
  endforeach()

  # The target may be defined later or in another directory: then $<TARGET_FILE:...> and the
  # dependencies below are resolved at generate time. If it exists already, check its kind now.
  if(TARGET "${target}")
    get_target_property(aliased "${target}" ALIASED_TARGET)
    if(aliased)
      set(target "${aliased}")
    endif()
    get_target_property(type "${target}" TYPE)
    if(NOT type MATCHES "^(SHARED_LIBRARY|MODULE_LIBRARY|EXECUTABLE)$")
      message(FATAL_ERROR "add_relro_check(${target}): ${target} is a ${type}; relrocheck checks "
                          "linked ELF files: shared libraries, modules and (PIE) executables")
    endif()
  endif()
  string(REPLACE "::" "_" name "${target}")
  if(TARGET "relro-check-${name}")
    message(FATAL_ERROR "add_relro_check(${target}): ${target} is checked already")
  endif()

  _relrocheck_resolve_command(command error)
  if(error)
    message(FATAL_ERROR "add_relro_check(${target}): ${error}")
  endif()

  # Files named at configure time are plain DEPENDS: that works with every generator. Only an
  # existing file can be one; Ninja and make refuse an input that is missing and has no rule,
  # and a baseline does not exist before its first update.
  set(options "")
  set(depends "${target}")
  if(DEFINED arg_POLICY)
    cmake_path(ABSOLUTE_PATH arg_POLICY BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE
               OUTPUT_VARIABLE policy)
    if(NOT EXISTS "${policy}")
      message(FATAL_ERROR "add_relro_check(${target}): POLICY ${policy} does not exist")
    endif()
    list(APPEND options --policy "${policy}")
    list(APPEND depends "${policy}")
  endif()
  if(NOT DEFINED arg_POLICY AND NOT DEFINED arg_BASELINE)
    # relrocheck's own default is relro-baseline.json in its working directory, the build tree:
    # a baseline is reviewed and committed, so it belongs in the source tree.
    set(arg_BASELINE relro-baseline.json)
  endif()
  if(DEFINED arg_BASELINE)
    cmake_path(ABSOLUTE_PATH arg_BASELINE BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE
               OUTPUT_VARIABLE baseline)
    list(APPEND options --baseline-file "${baseline}")
    if(EXISTS "${baseline}")
      list(APPEND depends "${baseline}")
    endif()
  endif()
  # A new relrocheck (pip rewrites its script) may judge differently: check again.
  list(GET command 0 program)
  if(IS_ABSOLUTE "${program}" AND EXISTS "${program}")
    list(APPEND depends "${program}")
  endif()

  # Multi-config generators build every configuration in one tree: one stamp per configuration.
  get_property(multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
  set(dir "${CMAKE_CURRENT_BINARY_DIR}/relrocheck")
  if(multi_config)
    string(APPEND dir "/$<CONFIG>")
  endif()
  set(stamp "${dir}/${name}.stamp")

  # The depfile relrocheck writes names the policy and the baseline it really read. That adds
  # what DEPENDS cannot know: the baseline location a policy chooses when BASELINE is not given,
  # and a baseline created after configure. Ninja and the Makefile generators (CMake 3.20)
  # honour DEPFILE; Xcode and Visual Studio only from 3.21, and there the DEPENDS above suffice.
  # CMake 3.20 hands Ninja Multi-Config's depfile rewriting the path with $<CONFIG> unexpanded,
  # so the depfile is never found and the check reruns on every build: not there either.
  set(depfile_options "")
  set(depfile_args "")
  if(CMAKE_GENERATOR MATCHES "Ninja|Makefiles"
     AND NOT (multi_config AND CMAKE_VERSION VERSION_LESS 3.21))
    set(depfile "${dir}/${name}.d")
    set(depfile_options --depfile "${depfile}")
    set(depfile_args DEPFILE "${depfile}")
  endif()

  add_custom_command(
    OUTPUT "${stamp}"
    COMMAND ${command} check "$<TARGET_FILE:${target}>" ${options} ${arg_ARGS}
            --stamp "${stamp}" ${depfile_options}
    DEPENDS ${depends}
    ${depfile_args}
    COMMENT "relrocheck: checking ${target}"
    VERBATIM)
  if(arg_NO_ALL)
    add_custom_target("relro-check-${name}" DEPENDS "${stamp}")
  else()
    add_custom_target("relro-check-${name}" ALL DEPENDS "${stamp}")
  endif()

  # Removing the stamp makes the next build check against the new baseline even where no
  # depfile told the generator about a baseline that appeared after configure. USES_TERMINAL:
  # the update's report shows as it runs, and Ninja runs the updates one at a time (relrocheck
  # locks the baseline file anyway).
  add_custom_target("relro-baseline-update-${name}"
    COMMAND ${command} --baseline update "$<TARGET_FILE:${target}>" ${options}
    COMMAND "${CMAKE_COMMAND}" -E rm -f "${stamp}"
    COMMENT "relrocheck: updating the baseline of ${target}"
    VERBATIM
    USES_TERMINAL)
  add_dependencies("relro-baseline-update-${name}" "${target}")
  if(NOT TARGET relro-baseline-update)
    add_custom_target(relro-baseline-update)
  endif()
  add_dependencies(relro-baseline-update "relro-baseline-update-${name}")

  if(arg_TEST)
    add_test(NAME "relrocheck.${name}"
             COMMAND ${command} check "$<TARGET_FILE:${target}>" ${options} ${arg_ARGS})
    set_tests_properties("relrocheck.${name}" PROPERTIES LABELS relro)
  endif()
endfunction()
