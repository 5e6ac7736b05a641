# Builds one compile-fail target and passes only if the build fails with a diagnostic that
# matches EXPECT (so a failure for any other reason, a typo say, does not count).
# Usage: cmake -DBUILD_DIR=... -DTARGET=... -DEXPECT=regex -P expect_fail.cmake
execute_process(
  COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target ${TARGET}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
if(result EQUAL 0)
  message(FATAL_ERROR "${TARGET} compiled, but it must be rejected (${EXPECT})")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "${TARGET} failed, but not with a diagnostic matching '${EXPECT}':\n${out}")
endif()
message(STATUS "${TARGET} rejected as expected ('${EXPECT}')")
