// datasets/fetch_cifar10.sh, run offline: argument handling, and the
// verify/unpack/gzip pipeline on a small fake tarball (checksums replaced
// through the script's test-only variables). Skipped without bash/tar/gzip.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../common/errors.hpp"
#include "../common/files.hpp"
#include "mixq/io/file.hpp"

using namespace mixq_test;

namespace {
const std::string script = std::string(MIXQ_SOURCE_DIR) + "/datasets/fetch_cifar10.sh";

struct result {
  int rc;
  std::string out;
};

// Runs a shell command line, returns its exit status and output.
result sh(const std::string& cmd, const temp_dir& d) {
  const std::string log = d.file("out.log");
  const int st = std::system(("(" + cmd + ") >" + log + " 2>&1").c_str());
  std::ifstream in(log);
  std::stringstream ss;
  ss << in.rdbuf();
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, ss.str()};
}

bool have_tools() {
  return std::system("command -v bash tar gzip md5sum sha256sum >/dev/null 2>&1") == 0;
}

const char* names[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                       "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

// A fake cifar-10-binary.tar.gz in d; returns the tarball path.
std::string make_fake_tarball(const temp_dir& d) {
  const std::string src = d.file("pkg/cifar-10-batches-bin");
  std::filesystem::create_directories(src);
  int k = 0;
  for (const char* n : names) {
    std::vector<std::uint8_t> b(1000 + 37 * k, static_cast<std::uint8_t>(k * 11));
    write_bytes(src + "/" + n, b);
    ++k;
  }
  const std::string meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n";
  write_bytes(src + "/batches.meta.txt", std::vector<std::uint8_t>(meta.begin(), meta.end()));
  REQUIRE(sh("cd " + src + " && sha256sum *.bin > " + d.file("sums"), d).rc == 0);
  REQUIRE(
      sh("tar -czf " + d.file("fake.tar.gz") + " -C " + d.file("pkg") + " cifar-10-batches-bin", d)
          .rc == 0);
  return d.file("fake.tar.gz");
}
}  // namespace

TEST_CASE("fetch_cifar10.sh: argument handling") {
  if (!have_tools()) {
    MESSAGE("SKIPPED: bash, tar, gzip, md5sum or sha256sum missing");
    return;
  }
  temp_dir d;
  auto r = sh("bash " + script + " --help", d);
  CHECK(r.rc == 0);
  CHECK(contains(r.out, "Usage:"));
  CHECK(contains(r.out, "--from-tarball FILE"));
  r = sh("bash " + script + " --bogus", d);
  CHECK(r.rc == 2);
  CHECK(contains(r.out, "unknown option '--bogus'"));
  r = sh("bash " + script + " a b", d);
  CHECK(r.rc == 2);
  CHECK(contains(r.out, "more than one TARGET"));
  r = sh("bash " + script + " --from-tarball", d);
  CHECK(r.rc == 2);
  r = sh("bash " + script + " --from-tarball " + d.file("none.tar.gz") + " " + d.file("t"), d);
  CHECK(r.rc == 1);
  CHECK(contains(r.out, "not found"));
  CHECK_FALSE(std::filesystem::exists(d.file("t")));
}

TEST_CASE("fetch_cifar10.sh: the published MD5 rejects any other tarball") {
  if (!have_tools()) {
    MESSAGE("SKIPPED: bash, tar, gzip, md5sum or sha256sum missing");
    return;
  }
  temp_dir d;
  const std::string tgz = make_fake_tarball(d);
  const auto r = sh("bash " + script + " --from-tarball " + tgz + " " + d.file("t"), d);
  CHECK(r.rc == 1);
  CHECK(contains(r.out, "MD5 mismatch"));
  CHECK(contains(r.out, "expected c32a1d4ab5d03f1284b67883e8d87530"));
  CHECK_FALSE(std::filesystem::exists(d.file("t")));  // nothing written
}

TEST_CASE("fetch_cifar10.sh: verify, unpack and gzip a (fake) tarball") {
  if (!have_tools()) {
    MESSAGE("SKIPPED: bash, tar, gzip, md5sum or sha256sum missing");
    return;
  }
  temp_dir d;
  const std::string tgz = make_fake_tarball(d);
  auto md5 = sh("md5sum " + tgz + " | cut -d' ' -f1", d);
  REQUIRE(md5.rc == 0);
  md5.out.resize(32);
  const std::string env =
      "MIXQ_FETCH_TEST_MD5=" + md5.out + " MIXQ_FETCH_TEST_SHA256SUMS=" + d.file("sums");

  SUBCASE("checks pass: files land gzip-compressed and byte-identical") {
    const auto r = sh(env + " bash " + script + " --from-tarball " + tgz + " " + d.file("t"), d);
    INFO(r.out);
    REQUIRE(r.rc == 0);
    int k = 0;
    for (const char* n : names) {
      const auto bytes = mixq::io::read_file_bytes(d.file("t/") + n + ".gz");
      CHECK(bytes == std::vector<std::uint8_t>(1000 + 37 * k, static_cast<std::uint8_t>(k * 11)));
      ++k;
    }
    CHECK(std::filesystem::exists(d.file("t/batches.meta.txt")));
    CHECK(std::filesystem::exists(d.file("t/SHA256SUMS")));
    // A second run sees the data and does nothing.
    const auto again =
        sh(env + " bash " + script + " --from-tarball " + tgz + " " + d.file("t"), d);
    CHECK(again.rc == 0);
    CHECK(contains(again.out, "already holds CIFAR-10"));
  }
  SUBCASE("a SHA-256 mismatch of one file writes nothing") {
    REQUIRE(sh("sed -i '3s/^./0/;3s/^0/1/' " + d.file("sums"), d).rc == 0);  // change line 3's hash
    const auto r = sh(env + " bash " + script + " --from-tarball " + tgz + " " + d.file("t"), d);
    CHECK(r.rc == 1);
    CHECK(contains(r.out, "SHA-256 mismatch"));
    CHECK_FALSE(std::filesystem::exists(d.file("t")));
  }
}
