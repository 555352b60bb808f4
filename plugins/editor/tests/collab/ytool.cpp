// collab_ytool: the C++ Yjs update code on the command line, for the Node
// tests that compare it with yjs. Input on stdin: updates, each as a u32
// big-endian length then the bytes. Output on stdout: one result's bytes.
//   collab_ytool merge            -> merged update (compacted)
//   collab_ytool merge-plain      -> merged update without item fusion
//   collab_ytool sv               -> state vector of the first update
//   collab_ytool diff             -> first update minus the state vector given as the second input
// Exit 2 with a message on stderr for malformed input.
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "yupdate.hpp"

using namespace vellum::editor::collab;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: collab_ytool merge|merge-plain|sv|diff < framed-updates\n";
    return 1;
  }
  const std::string mode = argv[1];
  std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  std::vector<std::string> parts;
  for (size_t i = 0; i + 4 <= in.size();) {
    const size_t n = (size_t(uint8_t(in[i])) << 24) | (size_t(uint8_t(in[i + 1])) << 16) |
                     (size_t(uint8_t(in[i + 2])) << 8) | size_t(uint8_t(in[i + 3]));
    if (i + 4 + n > in.size()) {
      std::cerr << "truncated input\n";
      return 1;
    }
    parts.push_back(in.substr(i + 4, n));
    i += 4 + n;
  }
  try {
    std::string out;
    if (mode == "merge" || mode == "merge-plain") {
      std::vector<std::string_view> v(parts.begin(), parts.end());
      out = merge_updates(v, mode == "merge");
    } else if (mode == "sv" && parts.size() == 1) {
      out = encode_state_vector(state_vector(decode_update(parts[0])));
    } else if (mode == "diff" && parts.size() == 2) {
      out = encode_update(diff_update(decode_update(parts[0]), decode_state_vector(parts[1])));
    } else {
      std::cerr << "bad mode or input count\n";
      return 1;
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  } catch (const DecodeError& e) {
    std::cerr << "malformed: " << e.what() << "\n";
    return 2;
  }
}
