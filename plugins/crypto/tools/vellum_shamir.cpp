// vellum-shamir: split the root key into k-of-n shares and combine them back.
//   vellum-shamir split K N < root.key     prints N shares, one per line
//   vellum-shamir combine < shares          prints the root key (base64)
// The key and the shares go through stdin/stdout only, never argv (visible
// to other users in the process list).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "aead.hpp"
#include "shamir.hpp"

int main(int argc, char** argv) {
  using namespace vellum::crypto;
  const std::string cmd = argc > 1 ? argv[1] : "";
  try {
    if (cmd == "split" && argc == 4) {
      std::string line;
      std::getline(std::cin, line);
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      auto key = b64decode(line);
      cleanse(line.data(), line.size());
      if (!key || key->size() != 32) {
        std::cerr << "vellum-shamir: stdin must hold the root key: base64 of 32 bytes\n";
        return 2;
      }
      const int k = std::atoi(argv[2]), n = std::atoi(argv[3]);
      if (k < 2 || n < k || n > 255) {
        std::cerr << "vellum-shamir: need 2 <= K <= N <= 255\n";
        return 2;
      }
      for (const auto& s : shamir_split(*key, static_cast<unsigned>(k), static_cast<unsigned>(n)))
        std::cout << s << "\n";
      cleanse(key->data(), key->size());
      return 0;
    }
    if (cmd == "combine" && argc == 2) {
      std::vector<std::string> shares;
      for (std::string line; std::getline(std::cin, line);)
        if (!line.empty()) shares.push_back(line);
      std::string key = shamir_combine(shares);
      std::cout << b64encode(key) << "\n";
      cleanse(key.data(), key.size());
      return 0;
    }
  } catch (const std::exception& e) {
    std::cerr << "vellum-shamir: " << e.what() << "\n";
    return 1;
  }
  std::cerr << "usage: vellum-shamir split K N < root.key | vellum-shamir combine < shares\n";
  return 2;
}
