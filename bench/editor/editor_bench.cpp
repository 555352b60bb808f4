// Editor benchmarks (issue 5): save and load throughput through a real
// vellumd (crypto + editor: per-document key, AES-256-GCM, the storage
// barrier, SQLite with fsync) for 10 KiB, 1 MiB and 10 MiB documents, side by
// side with the limit the same machine sets for one durable encrypted write:
// AES-256-GCM over the bytes plus write + fsync of a file. And the three-way
// merge of a 1 MiB document with 1,000 disjoint changes, beside a JSON
// parse + dump of the same three inputs.
//
// bench_editor [--runs N]   (medians of N runs; default 5)
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>
#include <vector>

#include "harness.hpp"
#include "merge.hpp"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string b64(const std::string& raw) {
  std::string out(4 * ((raw.size() + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                  reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
  return out;
}

// The floor for one durable encrypted save of n bytes: encrypt, write, fsync.
double limit_save_seconds(const std::string& content, const std::string& path) {
  unsigned char key[32], iv[12], tag[16];
  RAND_bytes(key, sizeof key);
  RAND_bytes(iv, sizeof iv);
  std::string out(content.size(), '\0');
  auto t0 = Clock::now();
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key, iv);
  EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &len,
                    reinterpret_cast<const unsigned char*>(content.data()), static_cast<int>(content.size()));
  EVP_EncryptFinal_ex(ctx, nullptr, &len);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag);
  EVP_CIPHER_CTX_free(ctx);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ::write(fd, out.data(), out.size()) != static_cast<ssize_t>(out.size()) || ::fsync(fd) != 0)
    throw std::runtime_error("limit write failed");
  ::close(fd);
  return seconds_since(t0);
}

json big_doc(size_t items) {
  json doc = {{"type", "doc"}, {"items", json::array()}};
  for (size_t i = 0; i < items; ++i)
    doc["items"].push_back({{"id", i}, {"text", "item " + std::to_string(i) + std::string(100, 'x')}});
  return doc;
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 5;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--runs") runs = std::max(1, std::atoi(argv[i + 1]));

  // ---- merge: 1 MiB, 1,000 disjoint changes (500 per side)
  json base = big_doc(8000);
  std::string base_text = base.dump();
  json local = base, remote = base;
  for (size_t i = 0; i < 500; ++i) {
    local["items"][i * 2]["text"] = "local edit " + std::to_string(i);
    remote["items"][i * 2 + 1001]["text"] = "remote edit " + std::to_string(i);
  }
  std::vector<double> merge_s, roundtrip_s;
  for (int r = 0; r < runs; ++r) {
    auto t0 = Clock::now();
    auto m = vellum::editor::merge3(base, local, remote);
    merge_s.push_back(seconds_since(t0));
    if (!m.conflicts.empty()) throw std::runtime_error("unexpected conflicts");
    std::string l = local.dump(), rm = remote.dump();
    t0 = Clock::now();
    for (const std::string* s : {&base_text, &l, &rm}) (void)json::parse(*s).dump();
    roundtrip_s.push_back(seconds_since(t0));
  }
  std::printf(
      "merge 1 MiB (%.2f MiB), 1000 disjoint changes: median %.1f ms; JSON parse+dump of the 3 inputs %.1f "
      "ms (%.2fx)\n",
      base_text.size() / 1048576.0, median(merge_s) * 1e3, median(roundtrip_s) * 1e3,
      median(merge_s) / median(roundtrip_s));

  // ---- save/load through vellumd
  std::string root(32, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(root.data()), 32);
  vt::Site site(
      "[server]\nmax_body_bytes = 67108864\n"
      "[plugins.crypto]\nroot_key = { env = \"VELLUM_ROOT_KEY\" }\n"
      "[plugins.editor]\nmax_document_bytes = 33554432\n",
      "bench@example.com", "correct horse staple 42", {{"VELLUM_ROOT_KEY", b64(root)}});
  auto v = site.start();
  vt::HttpClient c(*v);
  std::string tok = vt::login(c, "bench@example.com", "correct horse staple 42");
  std::map<std::string, std::string> h = {{"Authorization", "Bearer " + tok},
                                          {"Content-Type", "application/json"}};
  std::printf("\n%-8s %14s %14s %14s %10s\n", "size", "save MiB/s", "limit MiB/s", "load MiB/s",
              "save/limit");
  for (size_t size : {size_t(10) << 10, size_t(1) << 20, size_t(10) << 20}) {
    std::string content(size, 'a');
    auto r = c.request("POST", "/v1/docs", json({{"type", "text"}, {"content", content}}).dump(), h);
    if (r.status != 201) throw std::runtime_error("create failed: " + r.body);
    const std::string id = json::parse(r.body)["id"];
    uint64_t version = 1;
    const int per_run = size >= (1u << 20) ? 3 : 30;
    std::vector<double> save, load, limit;
    for (int run = 0; run < runs; ++run) {
      double s = 0, l = 0, lim = 0;
      for (int i = 0; i < per_run; ++i) {
        content[0] = static_cast<char>('b' + (version % 20));  // a real change: a new version each time
        std::string body = json({{"base_version", version}, {"content", content}}).dump();
        auto t0 = Clock::now();
        auto sr = c.request("PUT", "/v1/docs/" + id, body, h);
        s += seconds_since(t0);
        if (sr.status != 200) throw std::runtime_error("save failed: " + sr.body.substr(0, 200));
        version = json::parse(sr.body)["version"];
        t0 = Clock::now();
        auto lr = c.request("GET", "/v1/docs/" + id, "", h);
        l += seconds_since(t0);
        if (lr.status != 200) throw std::runtime_error("load failed");
        lim += limit_save_seconds(content, site.dir().path() + "/limit.bin");
      }
      double mib = static_cast<double>(size) * per_run / 1048576.0;
      save.push_back(mib / s);
      load.push_back(mib / l);
      limit.push_back(mib / lim);
    }
    std::printf("%-8s %14.1f %14.1f %14.1f %10.2f\n",
                size < (1u << 20)    ? "10 KiB"
                : size < (10u << 20) ? "1 MiB"
                                     : "10 MiB",
                median(save), median(limit), median(load), median(save) / median(limit));
  }
  return v->stop() == 0 ? 0 : 1;
}
