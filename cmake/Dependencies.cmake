# SPDX-License-Identifier: MIT
# Every third-party dependency is found here, from Debian packages (scripts/setup.sh installs them).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CURL REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(SQLite3 REQUIRED)
pkg_check_modules(libserialport REQUIRED IMPORTED_TARGET libserialport)
# libpq: the PostgreSQL ledger shared by every station of a line (store/pg.*).
pkg_check_modules(libpq REQUIRED IMPORTED_TARGET libpq)
# libmosquitto: the MQTT client of `creds probe` (CONNECT / CONNACK over TLS).
pkg_check_modules(libmosquitto REQUIRED IMPORTED_TARGET libmosquitto)
if(IOT_BUILD_TESTS)
  find_package(doctest REQUIRED)
endif()
# cpp-httplib (emulator only): Debian ships a header plus a compiled library.
find_path(HTTPLIB_INCLUDE_DIR httplib.h REQUIRED)
find_library(HTTPLIB_LIBRARY cpp-httplib REQUIRED)
add_library(iot_httplib INTERFACE)
target_include_directories(iot_httplib SYSTEM INTERFACE ${HTTPLIB_INCLUDE_DIR})
target_link_libraries(iot_httplib INTERFACE ${HTTPLIB_LIBRARY} OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
target_compile_definitions(iot_httplib INTERFACE CPPHTTPLIB_OPENSSL_SUPPORT)
