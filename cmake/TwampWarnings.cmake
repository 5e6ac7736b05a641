# Project-wide warning and sanitizer flags, applied through twamp_project_options().
add_library(twamp_project_options INTERFACE)
target_compile_options(twamp_project_options INTERFACE -Wall -Wextra -Wpedantic)
# clang 14 writes DWARF 5, which valgrind 3.19 (Debian 12) cannot read: the valgrind test runs on
# clang builds too.
target_compile_options(twamp_project_options INTERFACE $<$<CXX_COMPILER_ID:Clang>:-gdwarf-4>)
if(TWAMP_WERROR)
  target_compile_options(twamp_project_options INTERFACE -Werror)
endif()
if(TWAMP_SANITIZE)
  target_compile_options(twamp_project_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(twamp_project_options INTERFACE -fsanitize=address,undefined)
endif()
