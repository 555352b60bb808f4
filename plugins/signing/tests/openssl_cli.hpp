// Runs the stock openssl command line on files, as a third party would.
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "harness.hpp"
#include "keys.hpp"

namespace signing_test {

inline constexpr vellum::signing::Algorithm kAll[] = {
    vellum::signing::Algorithm::EcdsaP256, vellum::signing::Algorithm::EcdsaSecp256k1,
    vellum::signing::Algorithm::Ed25519, vellum::signing::Algorithm::RsaPss};

inline std::string openssl_path() {
  for (const char* p : {"/usr/bin/openssl", "/usr/local/bin/openssl", "/bin/openssl"}) {
    if (FILE* f = std::fopen(p, "r")) {
      std::fclose(f);
      return p;
    }
  }
  FAIL("no openssl binary");
  return {};
}

// openssl <args...>; returns the result (exit code, stdout, stderr).
inline vt::RunResult openssl(std::vector<std::string> args) {
  args.insert(args.begin(), openssl_path());
  return vt::run(args);
}

inline std::vector<std::string> verify_args(const std::string& algorithm, const std::string& pub,
                                            const std::string& msg, const std::string& sig) {
  if (algorithm == "ed25519")
    return {"pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", msg, "-sigfile", sig};
  if (algorithm == "rsa-pss-sha256")
    return {"dgst",       "-sha256",
            "-sigopt",    "rsa_padding_mode:pss",
            "-sigopt",    "rsa_pss_saltlen:32",
            "-sigopt",    "rsa_mgf1_md:sha256",
            "-verify",    pub,
            "-signature", sig,
            msg};
  return {"dgst", "-sha256", "-verify", pub, "-signature", sig, msg};
}

}  // namespace signing_test
