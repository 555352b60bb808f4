// lib0's binary encoding (the wire format of Yjs and y-protocols): unsigned
// varints of 7 bits per byte, least significant first; length-prefixed byte
// arrays and UTF-8 strings. The decoder is strict: it never reads past the
// end, refuses integers beyond 2^53 (what a JavaScript peer can represent)
// and lengths beyond the bytes that remain, so hostile input cannot make it
// allocate or loop.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace vellum::editor::collab {

// Malformed input; what() says what was wrong (never the data itself).
class DecodeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;

// True if s is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool valid_utf8(std::string_view s);
// Length of a well-formed UTF-8 string in UTF-16 code units (JavaScript's length).
uint64_t utf16_length(std::string_view s);

class Decoder {
 public:
  explicit Decoder(std::string_view data) : p_(data.data()), end_(data.data() + data.size()) {}
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool done() const { return p_ == end_; }
  const char* pos() const { return p_; }

  uint8_t u8() {
    if (p_ == end_) throw DecodeError("unexpected end of message");
    return static_cast<uint8_t>(*p_++);
  }
  uint64_t var_uint() {
    uint64_t v = 0;
    for (int shift = 0;; shift += 7) {
      if (p_ == end_) throw DecodeError("truncated varint");
      const auto b = static_cast<uint8_t>(*p_++);
      if (shift >= 56) throw DecodeError("varint out of range");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    if (v > kMaxSafeInteger) throw DecodeError("varint out of range");
    return v;
  }
  // lib0 writeVarInt: the first byte carries a continuation bit, a sign bit
  // and 6 value bits; the rest are like var_uint.
  int64_t var_int() {
    uint8_t b = u8();
    uint64_t v = b & 0x3f;
    const bool negative = b & 0x40;
    int shift = 6;
    while (b & 0x80) {
      b = u8();
      if (shift >= 55) throw DecodeError("varint out of range");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      shift += 7;
    }
    if (v > kMaxSafeInteger) throw DecodeError("varint out of range");
    return negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  }
  std::string_view bytes(uint64_t n) {
    if (n > remaining()) throw DecodeError("length exceeds message");
    std::string_view s(p_, static_cast<size_t>(n));
    p_ += n;
    return s;
  }
  std::string_view var_bytes() { return bytes(var_uint()); }
  std::string_view var_string() {
    auto s = var_bytes();
    if (!valid_utf8(s)) throw DecodeError("invalid UTF-8");
    return s;
  }
  // A count of items that each take at least one byte: bounded by what remains.
  uint64_t count() {
    const uint64_t n = var_uint();
    if (n > remaining()) throw DecodeError("count exceeds message");
    return n;
  }
  // The end of a message: nothing may follow.
  void finish() const {
    if (!done()) throw DecodeError("trailing bytes after message");
  }
  // Skips one lib0 "any" value (writeAny), checking its structure.
  void skip_any(int depth = 0);

 private:
  const char* p_;
  const char* end_;
};

class Encoder {
 public:
  void u8(uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void var_uint(uint64_t v) {
    while (v > 0x7f) {
      out_.push_back(static_cast<char>(0x80 | (v & 0x7f)));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void raw(std::string_view b) { out_.append(b); }
  void var_bytes(std::string_view b) {
    var_uint(b.size());
    out_.append(b);
  }
  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }
  size_t size() const { return out_.size(); }

 private:
  std::string out_;
};

}  // namespace vellum::editor::collab
