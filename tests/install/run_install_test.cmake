# SPDX-License-Identifier: Apache-2.0
# Drives one install test (CTest runs it with cmake -P): installs the build tree into a fresh
# prefix, builds consumer.c against it the way MODE says (pkgconfig or cmake_package), runs it and
# checks the profile it wrote with the checker.
cmake_minimum_required(VERSION 3.25)

foreach(var MODE BUILD_DIR WORK_DIR SOURCE_DIR LIBDIR C_COMPILER GENERATOR CHECKER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_install_test.cmake needs -D${var}=...")
  endif()
endforeach()

# Runs a command and stops the test when it fails, showing everything it printed; on success its
# standard output is left in run_out.
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "${what} failed (${rc}):\n  ${cmd}\n${out}${err}")
  endif()
  set(run_out "${out}" PARENT_SCOPE)
endfunction()

# True in out_var when two paths name the same file or folder.
function(same_path out_var a b)
  file(REAL_PATH "${a}" ra)
  file(REAL_PATH "${b}" rb)
  if(ra STREQUAL rb)
    set(${out_var} TRUE PARENT_SCOPE)
  else()
    set(${out_var} FALSE PARENT_SCOPE)
  endif()
endfunction()

# Runs a built consumer into its own logdir and hands the profile it reports to the checker.
function(run_and_check exe tag)
  set(logdir ${WORK_DIR}/logdir-${tag})
  run("${tag}: running the consumer" ${exe} ${logdir})
  string(STRIP "${run_out}" profile)
  if(NOT profile MATCHES "^${logdir}/" OR NOT EXISTS "${profile}")
    message(FATAL_ERROR "${tag}: the consumer reported \"${profile}\", not a file under ${logdir}")
  endif()
  run("${tag}: checking ${profile}" ${CHECKER} ${profile})
  message(STATUS "${tag}: ${run_out}")
endfunction()

# A fresh prefix: files left from an earlier run must not hide a file the install forgot.
set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(install_cmd ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
if(CONFIG)
  list(APPEND install_cmd --config ${CONFIG})
endif()
run("cmake --install" ${install_cmd})

foreach(f include/tfprof/tfprof.h ${LIBDIR}/libtfprof.so ${LIBDIR}/libtfprof.a
          ${LIBDIR}/pkgconfig/tfprof.pc ${LIBDIR}/cmake/tfprof/tfprofConfig.cmake
          ${LIBDIR}/cmake/tfprof/tfprofConfigVersion.cmake)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "cmake --install did not install ${f}")
  endif()
endforeach()
# The public header is the whole API: internal headers must stay out of the prefix.
file(GLOB_RECURSE headers RELATIVE ${prefix}/include ${prefix}/include/*)
if(NOT headers STREQUAL "tfprof/tfprof.h")
  message(FATAL_ERROR "installed headers are \"${headers}\", want only tfprof/tfprof.h")
endif()

# The installed library exports the header's API under its version node, and nothing else.
run("ABI of the installed library" bash ${SOURCE_DIR}/check_abi.sh ${prefix}/${LIBDIR}/libtfprof.so
    ${prefix}/include/tfprof/tfprof.h ${SOURCE_DIR}/../../src/libtfprof.map)
message(STATUS "${run_out}")

if(MODE STREQUAL "pkgconfig")
  # The build's own library is never on the loader's path; the rpath below points at the prefix.
  set(ENV{PKG_CONFIG_PATH} "${prefix}/${LIBDIR}/pkgconfig:$ENV{PKG_CONFIG_PATH}")
  find_program(PKG_CONFIG pkg-config REQUIRED)
  run("pkg-config" ${PKG_CONFIG} --cflags --libs tfprof)
  string(STRIP "${run_out}" pc_flags)
  separate_arguments(flags UNIX_COMMAND "${pc_flags}")

  # The flags must lead into the prefix the package was installed to, wherever that is; a .pc
  # file that names the configure-time prefix would send consumers to the wrong (or no) files.
  set(inc_ok FALSE)
  set(lib_ok FALSE)
  foreach(f IN LISTS flags)
    if(f MATCHES "^-I(.+)$")
      same_path(same "${CMAKE_MATCH_1}" "${prefix}/include")
      if(same)
        set(inc_ok TRUE)
      endif()
    elseif(f MATCHES "^-L(.+)$")
      same_path(same "${CMAKE_MATCH_1}" "${prefix}/${LIBDIR}")
      if(same)
        set(lib_ok TRUE)
      endif()
    endif()
  endforeach()
  if(NOT inc_ok OR NOT lib_ok)
    message(FATAL_ERROR "pkg-config --cflags --libs tfprof gives \"${pc_flags}\", which does not "
      "lead to the prefix ${prefix}: tfprof.pc must follow the prefix given at install time "
      "(cmake --install --prefix), e.g. prefix=\${pcfiledir}/../..")
  endif()

  # -Werror: the installed header must compile cleanly in a consumer's strict C11 build.
  run("compiling consumer.c with the pkg-config flags"
    ${C_COMPILER} -std=c11 -Wall -Wextra -Werror -pthread ${SOURCE_DIR}/consumer.c
    -o ${WORK_DIR}/consumer ${flags} -Wl,-rpath,${prefix}/${LIBDIR})
  run_and_check(${WORK_DIR}/consumer pkgconfig)
elseif(MODE STREQUAL "cmake_package")
  run("configuring the find_package() consumer"
    ${CMAKE_COMMAND} -S ${SOURCE_DIR}/cmake_consumer -B ${WORK_DIR}/build -G ${GENERATOR}
    -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_PREFIX_PATH=${prefix}
    -DTFPROF_EXPECTED_DIR=${prefix}/${LIBDIR}/cmake/tfprof)
  run("building the find_package() consumer" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
  run_and_check(${WORK_DIR}/build/consumer_shared cmake-shared)
  run_and_check(${WORK_DIR}/build/consumer_static cmake-static)
else()
  message(FATAL_ERROR "unknown MODE ${MODE}: want pkgconfig or cmake_package")
endif()
