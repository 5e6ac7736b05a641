# Standalone asio (Debian's libasio-dev) ships no CMake package: this defines the imported target
# twamp::asio that carries its include directory, the definitions twamp builds it with and the
# thread library. Used by the project itself and, installed beside twampConfig.cmake, by every
# consumer of find_package(twamp), so an exported target never names a path of the build machine.
if(NOT TARGET twamp::asio)
  find_path(TWAMP_ASIO_INCLUDE_DIR asio.hpp DOC "Directory that holds standalone asio's asio.hpp")
  if(TWAMP_ASIO_INCLUDE_DIR)
    find_package(Threads QUIET)
    add_library(twamp::asio INTERFACE IMPORTED)
    set_target_properties(twamp::asio PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${TWAMP_ASIO_INCLUDE_DIR}"
      INTERFACE_COMPILE_DEFINITIONS "ASIO_STANDALONE;ASIO_NO_DEPRECATED"
      INTERFACE_LINK_LIBRARIES Threads::Threads)
  endif()
endif()
