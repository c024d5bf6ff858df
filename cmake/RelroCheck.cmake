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
# Targets it creates, at the end of the top-level directory (so that <target> may be defined
# later, in any directory, and its type is known):
#   relro-check-<target>            checks <target>; in ALL unless NO_ALL
#   relro-baseline-update-<target>  rewrites the baseline entry of <target>
#   relro-baseline-update           rewrites the baseline entries of every checked target
#   relro-summary                   writes relro-summary.md and relro-summary.json in the top
#                                   build folder: every checked target, for a CI step summary
# A STATIC, OBJECT or INTERFACE library is not a linked ELF file: it is skipped with one status
# line (fmt-style BUILD_SHARED_LIBS=OFF builds keep configuring). RELROCHECK_ENABLE=OFF (a cache
# variable, default ON) skips every check.
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

# POSIX shell quoting, for the commands printed to be pasted: build folders may hold spaces.
function(_relrocheck_shell_quote out text)
  if(text MATCHES "^[A-Za-z0-9_@%+=:,./-]+$")
    set(${out} "${text}" PARENT_SCOPE)
  else()
    string(REPLACE "'" "'\\''" text "${text}")
    set(${out} "'${text}'" PARENT_SCOPE)
  endif()
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
  if(DEFINED RELROCHECK_ENABLE AND NOT RELROCHECK_ENABLE)
    get_property(told GLOBAL PROPERTY _RELROCHECK_TOLD_DISABLED)
    if(NOT told)
      message(STATUS "relrocheck: RELROCHECK_ENABLE is OFF: no library is checked")
      set_property(GLOBAL PROPERTY _RELROCHECK_TOLD_DISABLED TRUE)
    endif()
    return()
  endif()
  get_property(checked GLOBAL PROPERTY _RELROCHECK_TARGETS)
  if("${target}" IN_LIST checked)
    message(FATAL_ERROR "add_relro_check(${target}): ${target} is checked already")
  endif()

  _relrocheck_resolve_command(command error)
  if(error)
    message(FATAL_ERROR "add_relro_check(${target}): ${error}")
  endif()

  # Paths are made absolute here, where "relative to this directory" means something; the
  # targets are made at the end of the top-level directory.
  set(policy "")
  if(DEFINED arg_POLICY)
    cmake_path(ABSOLUTE_PATH arg_POLICY BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE
               OUTPUT_VARIABLE policy)
    if(NOT EXISTS "${policy}")
      message(FATAL_ERROR "add_relro_check(${target}): POLICY ${policy} does not exist")
    endif()
  endif()
  if(NOT DEFINED arg_POLICY AND NOT DEFINED arg_BASELINE)
    # relrocheck's own default is relro-baseline.json in its working directory, the build tree:
    # a baseline is reviewed and committed, so it belongs in the source tree.
    set(arg_BASELINE relro-baseline.json)
  endif()
  set(baseline "")
  if(DEFINED arg_BASELINE)
    cmake_path(ABSOLUTE_PATH arg_BASELINE BASE_DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" NORMALIZE
               OUTPUT_VARIABLE baseline)
  endif()
  if(arg_TEST)
    # ctest reads the tests of the top of the build tree only where enable_testing() was
    # called there; TEST asks for a test, so make it findable. enable_testing() sets a
    # variable of the directory it runs in, hence a deferred call of its own there, not one
    # inside a function. A project that turned testing off with include(CTest)'s BUILD_TESTING
    # gets no test.
    if(DEFINED BUILD_TESTING AND NOT BUILD_TESTING)
      message(STATUS "relrocheck: BUILD_TESTING is OFF: no test relrocheck.${target}")
      set(arg_TEST FALSE)
    else()
      get_property(testing GLOBAL PROPERTY _RELROCHECK_TESTING)
      if(NOT testing)
        cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL enable_testing)
        set_property(GLOBAL PROPERTY _RELROCHECK_TESTING TRUE)
      endif()
    endif()
  endif()
  set(prefix "_RELROCHECK_${target}")
  set_property(GLOBAL PROPERTY "${prefix}_COMMAND" "${command}")
  set_property(GLOBAL PROPERTY "${prefix}_POLICY" "${policy}")
  set_property(GLOBAL PROPERTY "${prefix}_BASELINE" "${baseline}")
  set_property(GLOBAL PROPERTY "${prefix}_ARGS" "${arg_ARGS}")
  set_property(GLOBAL PROPERTY "${prefix}_NO_ALL" "${arg_NO_ALL}")
  set_property(GLOBAL PROPERTY "${prefix}_TEST" "${arg_TEST}")
  set_property(GLOBAL PROPERTY "${prefix}_DIR" "${CMAKE_CURRENT_SOURCE_DIR}")
  set_property(GLOBAL APPEND PROPERTY _RELROCHECK_TARGETS "${target}")
  if(NOT checked)
    # Once, for every check: by the end of the top-level directory every target of the project
    # exists, whatever the order of add_subdirectory() and add_relro_check().
    cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _relrocheck_finish)
  endif()
endfunction()

# Runs at the end of the top-level directory: creates the targets of every add_relro_check().
function(_relrocheck_finish)
  get_property(targets GLOBAL PROPERTY _RELROCHECK_TARGETS)
  set(summary_args "")
  set(summary_depends "")
  set(command "")
  foreach(target IN LISTS targets)
    _relrocheck_add("${target}" checked)
    if(checked)
      get_property(command GLOBAL PROPERTY "_RELROCHECK_${target}_COMMAND")
      get_property(policy GLOBAL PROPERTY "_RELROCHECK_${target}_POLICY")
      get_property(baseline GLOBAL PROPERTY "_RELROCHECK_${target}_BASELINE")
      # relrocheck summary takes '-' where check would take no option (CMake drops empty
      # arguments from a custom command).
      if("${policy}" STREQUAL "")
        set(policy "-")
      endif()
      if("${baseline}" STREQUAL "")
        set(baseline "-")
      endif()
      list(APPEND summary_args --check "$<TARGET_FILE:${checked}>" "${policy}" "${baseline}")
      list(APPEND summary_depends "${checked}")
    endif()
  endforeach()
  if(summary_depends AND NOT TARGET relro-summary)
    add_custom_target(relro-summary
      COMMAND ${command} summary ${summary_args}
              --markdown "${CMAKE_BINARY_DIR}/relro-summary.md"
              --json "${CMAKE_BINARY_DIR}/relro-summary.json"
      COMMENT "relrocheck: writing relro-summary.md and relro-summary.json"
      VERBATIM)
    add_dependencies(relro-summary ${summary_depends})
  endif()
endfunction()

# Creates the targets of one add_relro_check(); <out_checked> is the checked target, or empty
# when it was skipped.
function(_relrocheck_add target out_checked)
  set(${out_checked} "" PARENT_SCOPE)
  set(prefix "_RELROCHECK_${target}")
  get_property(command GLOBAL PROPERTY "${prefix}_COMMAND")
  get_property(policy GLOBAL PROPERTY "${prefix}_POLICY")
  get_property(baseline GLOBAL PROPERTY "${prefix}_BASELINE")
  get_property(extra_args GLOBAL PROPERTY "${prefix}_ARGS")
  get_property(no_all GLOBAL PROPERTY "${prefix}_NO_ALL")
  get_property(with_test GLOBAL PROPERTY "${prefix}_TEST")
  get_property(called_in GLOBAL PROPERTY "${prefix}_DIR")

  if(NOT TARGET "${target}")
    message(FATAL_ERROR "add_relro_check(${target}) in ${called_in}: there is no target "
                        "named ${target} in this project")
  endif()
  get_target_property(aliased "${target}" ALIASED_TARGET)
  if(aliased)
    set(target "${aliased}")
  endif()
  get_target_property(type "${target}" TYPE)
  if(NOT type MATCHES "^(SHARED_LIBRARY|MODULE_LIBRARY|EXECUTABLE)$")
    message(STATUS "relrocheck: not checking ${target}: a ${type} is not a linked ELF file "
                   "(relrocheck checks shared libraries, modules and PIE executables)")
    return()
  endif()
  if(APPLE OR WIN32)
    message(STATUS "relrocheck: not checking ${target}: ${CMAKE_SYSTEM_NAME} does not link ELF "
                   "files")
    return()
  endif()
  string(REPLACE "::" "_" name "${target}")

  # Files named at configure time are plain DEPENDS: that works with every generator. Only an
  # existing file can be one; Ninja and make refuse an input that is missing and has no rule,
  # and a baseline does not exist before its first update.
  set(options "")
  set(depends "${target}")
  if(NOT "${policy}" STREQUAL "")
    list(APPEND options --policy "${policy}")
    list(APPEND depends "${policy}")
  endif()
  if(NOT "${baseline}" STREQUAL "")
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
  # This runs in the top-level directory, so the folder is the top of the build tree.
  get_property(multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)
  set(dir "relrocheck")
  set(config_option "")
  if(multi_config)
    string(APPEND dir "/$<CONFIG>")
    set(config_option " --config $<CONFIG>")
  endif()
  set(stamp "${CMAKE_BINARY_DIR}/${dir}/${name}.stamp")

  # What the failure output offers first: the build's own command, pasteable anywhere.
  _relrocheck_shell_quote(build_dir "${CMAKE_BINARY_DIR}")
  set(accept "cmake --build ${build_dir}${config_option} --target relro-baseline-update-${name}")

  # The depfile relrocheck writes names the policy and the baseline it really read. That adds
  # what DEPENDS cannot know: the baseline location a policy chooses when BASELINE is not given,
  # and a baseline created after configure. Ninja and the Makefile generators (CMake 3.20)
  # honour DEPFILE; Xcode and Visual Studio only from 3.21, and there the DEPENDS above suffice.
  # CMake 3.20 hands Ninja Multi-Config's depfile rewriting the path with $<CONFIG> unexpanded,
  # so the depfile is never found and the check reruns on every build: not there either.
  #
  # Ninja: the check runs in the top of the build tree and names its stamp and depfile relative
  # to it, exactly as build.ninja names them, so Ninja reads the depfile as relrocheck wrote it
  # (CMP0116 OLD). With CMP0116 NEW CMake would append `cmake -E cmake_transform_depfile ...`
  # to the command, and Ninja prints that whole line whenever a check fails.
  set(depfile_options "")
  set(depfile_args "")
  set(stamp_option "${stamp}")
  set(ninja_policy NEW)
  if(CMAKE_GENERATOR MATCHES "Ninja|Makefiles"
     AND NOT (multi_config AND CMAKE_VERSION VERSION_LESS 3.21))
    if(CMAKE_GENERATOR MATCHES "Ninja")
      set(stamp_option "${dir}/${name}.stamp")
      set(depfile_options --depfile "${dir}/${name}.d")
      set(ninja_policy OLD)
    else()
      set(depfile_options --depfile "${CMAKE_BINARY_DIR}/${dir}/${name}.d")
    endif()
    set(depfile_args DEPFILE "${CMAKE_BINARY_DIR}/${dir}/${name}.d")
  endif()

  cmake_policy(PUSH)
  cmake_policy(SET CMP0116 ${ninja_policy})
  add_custom_command(
    OUTPUT "${stamp}"
    COMMAND ${command} check "$<TARGET_FILE:${target}>" ${options} ${extra_args}
            --stamp "${stamp_option}" ${depfile_options} --accept-command "${accept}"
    DEPENDS ${depends}
    ${depfile_args}
    WORKING_DIRECTORY "${CMAKE_BINARY_DIR}"
    COMMENT "relrocheck: checking ${target}"
    VERBATIM)
  cmake_policy(POP)
  if(no_all)
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

  if(with_test)
    add_test(NAME "relrocheck.${name}"
             COMMAND ${command} check "$<TARGET_FILE:${target}>" ${options} ${extra_args}
                     --accept-command "${accept}")
    set_tests_properties("relrocheck.${name}" PROPERTIES LABELS relro)
  endif()
  set(${out_checked} "${target}" PARENT_SCOPE)
endfunction()
