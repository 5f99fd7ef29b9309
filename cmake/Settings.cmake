# SPDX-License-Identifier: MIT
# Shared compile settings as INTERFACE targets (after ccache's StandardSettings/StandardWarnings).
add_library(iot_settings INTERFACE)
target_compile_features(iot_settings INTERFACE cxx_std_23)
target_compile_definitions(iot_settings INTERFACE IOTFLEET_VERSION="${PROJECT_VERSION}")
if(IOT_SANITIZE)
  target_compile_options(iot_settings INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                                -fno-sanitize-recover=undefined)
  target_link_options(iot_settings INTERFACE -fsanitize=address,undefined)
endif()

add_library(iot_warnings INTERFACE)
target_compile_options(iot_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                              -Wno-sign-conversion -Wnon-virtual-dtor)
if(IOT_WERROR)
  target_compile_options(iot_warnings INTERFACE -Werror)
endif()
