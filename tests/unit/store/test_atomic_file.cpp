// SPDX-License-Identifier: MIT
#include "store/atomic_file.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace iot;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "iot-atomic-XXXXXX").string();
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 0777;
}

std::size_t entries(const fs::path& dir) {
  return static_cast<std::size_t>(
      std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

} // namespace

TEST_SUITE("store::AtomicFile") {
  TEST_CASE("commit creates the file with exactly the requested mode") {
    TempDir dir;
    const mode_t old_umask = ::umask(0);
    REQUIRE(store::write_file_atomically(dir.path / "secrets.csv", "dn,ds\n", 0600));
    REQUIRE(store::write_file_atomically(dir.path / "report.csv", "x\n", 0644));
    ::umask(old_umask);
    CHECK(slurp(dir.path / "secrets.csv") == "dn,ds\n");
    CHECK(mode_of(dir.path / "secrets.csv") == 0600);
    CHECK(mode_of(dir.path / "report.csv") == 0644);
  }

  TEST_CASE("the temporary file is 0600 from the start, before any byte is written") {
    TempDir dir;
    auto f = store::AtomicFile::create(dir.path / "s.csv");
    REQUIRE(f);
    CHECK(mode_of(f->temp_path()) == 0600);
    CHECK(f->temp_path().parent_path() == dir.path);
  }

  TEST_CASE("an abandoned write leaves the old content and no temporary file") {
    TempDir dir;
    const auto target = dir.path / "snapshot.csv";
    REQUIRE(store::write_file_atomically(target, "old complete content\n"));
    {
      auto f = store::AtomicFile::create(target);
      REQUIRE(f);
      REQUIRE(f->write("new but partial"));
      // Simulated failure (error, SIGINT): the writer goes out of scope without commit.
    }
    CHECK(slurp(target) == "old complete content\n");
    CHECK(entries(dir.path) == 1);
  }

  TEST_CASE("large content is written whole through the buffer") {
    TempDir dir;
    const std::string big(300000, 'x');
    auto f = store::AtomicFile::create(dir.path / "big");
    REQUIRE(f);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(f->write(big));
    }
    REQUIRE(f->commit());
    CHECK(fs::file_size(dir.path / "big") == 900000);
  }

  TEST_CASE("a failure at commit (directory gone) reports the path and leaves nothing behind") {
    TempDir dir;
    const auto sub = dir.path / "sub";
    fs::create_directory(sub);
    auto f = store::AtomicFile::create(sub / "out.csv");
    REQUIRE(f);
    REQUIRE(f->write("data"));
    const auto temp = f->temp_path();
    fs::remove(temp); // the directory vanishes under us: rename must fail
    fs::remove(sub);
    auto r = f->commit();
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ErrorKind::io);
    CHECK(r.error().message.find("out.csv") != std::string::npos);
    CHECK_FALSE(fs::exists(sub / "out.csv"));
    CHECK_FALSE(f->commit()); // at most once
  }

  TEST_CASE("creating in a missing directory names the directory and the fix") {
    TempDir dir;
    auto f = store::AtomicFile::create(dir.path / "missing" / "x.csv");
    REQUIRE_FALSE(f);
    CHECK(f.error().kind == ErrorKind::io);
    CHECK(f.error().message.find("missing") != std::string::npos);
    CHECK(f.error().message.find("create the directory") != std::string::npos);
  }
}
