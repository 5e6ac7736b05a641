# Project-wide warning and sanitizer flags, applied through twamp_project_options().
add_library(twamp_project_options INTERFACE)
target_compile_options(twamp_project_options INTERFACE -Wall -Wextra -Wpedantic)
if(TWAMP_WERROR)
  target_compile_options(twamp_project_options INTERFACE -Werror)
endif()
if(TWAMP_SANITIZE)
  target_compile_options(twamp_project_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(twamp_project_options INTERFACE -fsanitize=address,undefined)
endif()
