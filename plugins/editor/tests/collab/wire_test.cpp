// lib0 decoding bounds, y-websocket framing and the Yjs update format on
// hand-built inputs. The comparison with yjs itself is in ytool.test.mjs.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "lib0.hpp"
#include "opaque.hpp"
#include "protocol.hpp"
#include "yupdate.hpp"

using namespace vellum::editor::collab;

namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b) s.push_back(static_cast<char>(x));
  return s;
}

// One client's run of string items typed left to right into root text "t".
std::string typed(uint64_t client, uint64_t clock, const std::vector<std::string>& chunks) {
  Encoder e;
  e.var_uint(1);
  e.var_uint(chunks.size());
  e.var_uint(client);
  e.var_uint(clock);
  uint64_t c = clock;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i == 0 && clock == 0) {
      e.u8(kString);  // no origin: parent info follows
      e.var_uint(1);
      e.var_bytes("t");
    } else {
      e.u8(0x80 | kString);
      e.var_uint(client);
      e.var_uint(c - 1);
    }
    e.var_bytes(chunks[i]);
    c += utf16_length(chunks[i]);
  }
  e.var_uint(0);  // empty delete set
  return e.take();
}

}  // namespace

TEST_CASE("lib0 varints round trip and are bounded") {
  for (uint64_t v : {uint64_t{0}, uint64_t{127}, uint64_t{128}, uint64_t{300}, kMaxSafeInteger}) {
    Encoder e;
    e.var_uint(v);
    Decoder d(e.str());
    CHECK(d.var_uint() == v);
    CHECK(d.done());
  }
  CHECK_THROWS_AS(Decoder(bytes({0x80, 0x80})).var_uint(), DecodeError);  // truncated
  CHECK_THROWS_AS(Decoder(bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})).var_uint(),
                  DecodeError);
  Encoder big;
  big.var_uint(kMaxSafeInteger + 1);
  CHECK_THROWS_AS(Decoder(big.str()).var_uint(), DecodeError);
  // A length far beyond the message is refused before anything is allocated.
  CHECK_THROWS_AS(Decoder(bytes({0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2})).var_bytes(), DecodeError);
  CHECK_THROWS_AS(Decoder(bytes({2, 0xc3, 0x28})).var_string(), DecodeError);  // invalid UTF-8
}

TEST_CASE("UTF-16 lengths match JavaScript") {
  CHECK(utf16_length("abc") == 3);
  CHECK(utf16_length("\xC3\xA9") == 1);          // é
  CHECK(utf16_length("\xE2\x82\xAC") == 1);      // €
  CHECK(utf16_length("\xF0\x9F\x98\x80") == 2);  // 😀, a surrogate pair
  CHECK_FALSE(valid_utf8("\xED\xA0\x80"));       // an encoded surrogate
  CHECK_FALSE(valid_utf8("\xC0\x80"));           // overlong
}

TEST_CASE("y-websocket messages parse strictly") {
  const std::string step1 = sync_step1(bytes({0}));  // payload views into it
  auto m = parse_message(step1);
  CHECK(m.type == kSync);
  CHECK(m.sync_type == kSyncStep1);
  CHECK(m.payload == bytes({0}));
  CHECK(parse_message(bytes({3})).type == kQueryAwareness);
  CHECK_THROWS_AS(parse_message(bytes({9, 0})), DecodeError);           // unknown outer type
  CHECK_THROWS_AS(parse_message(bytes({0, 7, 0})), DecodeError);        // unknown sync type
  CHECK_THROWS_AS(parse_message(bytes({0, 0, 5, 1})), DecodeError);     // length beyond message
  CHECK_THROWS_AS(parse_message(bytes({0x80})), DecodeError);           // truncated varint
  CHECK_THROWS_AS(parse_message(bytes({0, 0, 1, 0, 9})), DecodeError);  // trailing bytes
  CHECK_THROWS_AS(parse_message(permission_denied("x")), DecodeError);  // clients send no auth
  CHECK(permission_denied("no") == bytes({2, 0, 2, 'n', 'o'}));
}

TEST_CASE("Hocuspocus frames: the document name first, then the message") {
  namespace hp = hocuspocus;
  const std::string doc = hp::prefix("d1");
  CHECK(doc == bytes({2, 'd', '1'}));
  // A y-protocols sync step 1 after the name parses as one.
  const std::string step1 = doc + sync_step1(bytes({0}));
  auto f = hp::parse(step1);
  CHECK(f.name == "d1");
  CHECK(f.type == hp::kSync);
  CHECK(f.message.sync_type == kSyncStep1);
  CHECK(f.body == sync_step1(bytes({0})));
  // The provider's auth message: type 2, token 0, the token.
  const std::string auth = doc + bytes({2, 0, 3, 't', 'o', 'k'});  // results are views into the input
  f = hp::parse(auth);
  CHECK(f.type == hp::kAuth);
  CHECK(f.token == "tok");
  const std::string stateless = doc + hp::stateless("hi");
  f = hp::parse(stateless);
  CHECK(f.type == hp::kStateless);
  CHECK(f.payload == "hi");
  CHECK(hp::parse(doc + bytes({7})).type == hp::kClose);
  CHECK_THROWS_AS(hp::parse(doc + bytes({2, 1, 0})), DecodeError);        // a client's "permission denied"
  CHECK_THROWS_AS(hp::parse(doc + bytes({4, 0, 0, 1, 0})), DecodeError);  // SyncReply: server to server only
  CHECK_THROWS_AS(hp::parse(doc + bytes({8, 1})), DecodeError);        // sync status: server to client only
  CHECK_THROWS_AS(hp::parse(doc + bytes({7, 0})), DecodeError);        // trailing bytes
  CHECK_THROWS_AS(hp::parse(bytes({5, 'd'})), DecodeError);            // truncated name
  CHECK_THROWS_AS(hp::parse(bytes({1, 0xff, 0})), DecodeError);        // name not UTF-8
  CHECK_THROWS_AS(hp::parse(doc + bytes({0, 0, 5, 1})), DecodeError);  // bad inner y-protocols message
  // Server messages, without the prefix.
  CHECK(hp::authenticated(true) == bytes({2, 2, 8, 'r', 'e', 'a', 'd', 'o', 'n', 'l', 'y'}));
  CHECK(hp::permission_denied("no") == bytes({2, 1, 2, 'n', 'o'}));
  CHECK(hp::sync_status(true) == bytes({8, 1}));
  CHECK(hp::sync_status(false) == bytes({8, 0}));
  CHECK(hp::close("x") == bytes({7, 1, 'x'}));
}

TEST_CASE("opaque relay messages parse strictly and never look inside blobs") {
  namespace op = opaque;
  auto m = op::parse_client(bytes({0, 0x96, 0x01}));
  CHECK(m.type == op::kSync);
  CHECK(m.after == 150);
  const std::string append = bytes({1, 7, 3, 0xde, 0xad, 0xbe});  // blobs are views into the input
  m = op::parse_client(append);
  CHECK(m.type == op::kAppend);
  CHECK(m.ref == 7);
  CHECK(m.blob == bytes({0xde, 0xad, 0xbe}));
  const std::string snapshot = bytes({2, 1, 4, 9, 1, 0xff});
  m = op::parse_client(snapshot);
  CHECK(m.type == op::kSnapshot);
  CHECK(m.ref == 1);
  CHECK(m.base == 4);
  CHECK(m.covers == 9);
  CHECK(m.blob == bytes({0xff}));
  m = op::parse_client(bytes({3, 0}));  // presence cleared
  CHECK(m.type == op::kAwareness);
  CHECK(m.blob.empty());
  CHECK_THROWS_AS(op::parse_client(bytes({1, 7, 0})), DecodeError);        // empty append
  CHECK_THROWS_AS(op::parse_client(bytes({2, 1, 0, 1, 0})), DecodeError);  // empty snapshot
  CHECK_THROWS_AS(op::parse_client(bytes({1, 7, 5, 1})), DecodeError);     // blob beyond the message
  CHECK_THROWS_AS(op::parse_client(bytes({0, 1, 0})), DecodeError);        // trailing bytes
  CHECK_THROWS_AS(op::parse_client(bytes({4})), DecodeError);              // unknown type
  CHECK_THROWS_AS(op::parse_client(bytes({0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})),
                  DecodeError);  // beyond 2^53
  CHECK(op::welcome(true, 3, 0, 12) == bytes({0, 1, 1, 3, 0, 12}));
  CHECK(op::entry(300, "ab") == bytes({2, 0xac, 0x02, 2, 'a', 'b'}));
  CHECK(op::synced(5, 9, true) == bytes({3, 5, 9, 1}));
  CHECK(op::denied(2, op::kLogFull, "x") == bytes({8, 2, 2, 1, 'x'}));
  const std::string rec = op::snapshot_record(1000, bytes({0, 1, 2}));
  auto [covers, blob] = op::parse_snapshot_record(rec);
  CHECK(covers == 1000);
  CHECK(blob == bytes({0, 1, 2}));
}

TEST_CASE("awareness updates parse and encode") {
  std::string a = encode_awareness({{7, 3, R"({"user":"a"})"}, {9, 1, "null"}});
  auto entries = parse_awareness(a);
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].client == 7);
  CHECK(entries[0].clock == 3);
  CHECK(entries[1].state == "null");
  CHECK_THROWS_AS(parse_awareness(encode_awareness({{1, 1, "{nope"}})), DecodeError);
}

TEST_CASE("updates decode and encode byte for byte") {
  const std::string u = typed(5, 0, {"ab", "c\xF0\x9F\x98\x80"});
  Update d = decode_update(u);
  REQUIRE(d.structs.size() == 2);
  CHECK(d.structs[0].length == 2);
  CHECK(d.structs[1].length == 3);
  CHECK(encode_update(d) == u);
  CHECK(state_vector(d) == StateVector{{5, 5}});
  CHECK(decode_state_vector(encode_state_vector({{5, 5}, {2, 9}})) == StateVector{{5, 5}, {2, 9}});
}

TEST_CASE("malformed updates are refused") {
  const std::string u = typed(5, 0, {"ab"});
  for (size_t n = 0; n < u.size(); ++n) CHECK_THROWS_AS(decode_update(u.substr(0, n)), DecodeError);
  CHECK_THROWS_AS(decode_update(u + "x"), DecodeError);
  // Content ref 17 does not exist.
  CHECK_THROWS_AS(decode_update(bytes({1, 1, 5, 0, 17, 0, 0})), DecodeError);
  // A struct count far beyond the message.
  CHECK_THROWS_AS(decode_update(bytes({1, 0xff, 0xff, 0x03, 5, 0})), DecodeError);
  // An empty GC range.
  CHECK_THROWS_AS(decode_update(bytes({1, 1, 5, 0, 0, 0, 0})), DecodeError);
}

TEST_CASE("merge fuses typed runs and keeps gaps as skips") {
  const std::string a = typed(5, 0, {"ab"});
  const std::string b = typed(5, 2, {"cd"});
  const std::string c = typed(5, 4, {"ef"});
  Update all = decode_update(merge_updates({c, a, b}));
  REQUIRE(all.structs.size() == 1);  // one item "abcdef"
  CHECK(all.structs[0].text == "abcdef");
  CHECK(state_vector(all) == StateVector{{5, 6}});
  // Without item fusion, three items.
  CHECK(decode_update(merge_updates({a, b, c}, false)).structs.size() == 3);
  // Missing the middle: a skip keeps clocks, and the state vector stops at the gap.
  Update gap = decode_update(merge_updates({a, c}));
  REQUIRE(gap.structs.size() == 3);
  CHECK(gap.structs[1].kind == StructKind::kSkip);
  CHECK(state_vector(gap) == StateVector{{5, 2}});
  // Overlaps are sliced: merging something with itself changes nothing.
  CHECK(merge_updates({a, a}) == a);
}

TEST_CASE("diff slices at the peer's clock") {
  const std::string u = typed(5, 0, {"abcd"});
  Update d = diff_update(decode_update(u), {{5, 1}});
  REQUIRE(d.structs.size() == 1);
  CHECK(d.structs[0].clock == 1);
  CHECK(d.structs[0].text == "bcd");
  CHECK(d.structs[0].has_origin);
  CHECK(d.structs[0].origin == Id{5, 0});
  CHECK(diff_update(decode_update(u), {{5, 4}}).structs.empty());
  // Splitting a surrogate pair yields U+FFFD, as ContentString.splice does.
  Update e = diff_update(decode_update(typed(5, 0, {"a\xF0\x9F\x98\x80z"})), {{5, 2}});
  REQUIRE(e.structs.size() == 1);
  CHECK(e.structs[0].text == "\xEF\xBF\xBDz");
  CHECK(e.structs[0].length == 2);
}

TEST_CASE("adds_nothing compares with the state") {
  const std::string state = typed(5, 0, {"abcd"});
  Update s = decode_update(state);
  CHECK(adds_nothing(decode_update(typed(5, 0, {"ab"})), state_vector(s), s.ds));
  CHECK_FALSE(adds_nothing(decode_update(typed(5, 4, {"e"})), state_vector(s), s.ds));
  Encoder del;  // no structs, deletes 5:1..2
  del.var_uint(0);
  del.var_uint(1);
  del.var_uint(5);
  del.var_uint(1);
  del.var_uint(1);
  del.var_uint(2);
  CHECK_FALSE(adds_nothing(decode_update(del.str()), state_vector(s), s.ds));
  Update merged = decode_update(merge_updates({state, del.str()}));
  CHECK(adds_nothing(decode_update(del.str()), state_vector(merged), merged.ds));
}
