// The signing-request state machine with an injected clock: sequential and
// parallel order, decline, expiry, cancellation, external (e-mail) signers
// and input validation.
#include <catch2/catch.hpp>

#include "workflow.hpp"

using namespace vellum::signing;
using nlohmann::json;

namespace {

constexpr int64_t kT0 = 1795000000000;

SigningRequest make(const json& body, int64_t now = kT0) {
  CreateInput in = parse_create(body, now);
  SigningRequest r;
  r.id = "r1";
  r.document = in.document;
  r.version = 1;
  r.content_sha256 = std::string(64, 'a');
  r.requester = "owner";
  r.order = in.order;
  r.deadline_ms = in.deadline_ms;
  r.created_ms = r.updated_ms = now;
  r.signers = in.signers;
  return r;
}

json three(const std::string& order, int64_t deadline) {
  return {
      {"document", "doc1"},
      {"signers", json::array({{{"user", "alice"}}, {{"email", "Ext@Example.com"}}, {{"user", "carol"}}})},
      {"order", order},
      {"deadline_ms", deadline}};
}

}  // namespace

TEST_CASE("Sequential three-signer request: order, an external signer, completion") {
  SigningRequest r = make(three("sequential", kT0 + 60000));
  REQUIRE(r.signers[1].principal() == "email:ext@example.com");  // normalized
  CHECK(awaiting(r) == std::vector<size_t>{0});
  // carol and the external signer must wait for alice.
  CHECK_THROWS_AS(check_can_act(r, 2, kT0 + 1), StateConflict);
  CHECK_THROWS_AS(record_signed(r, 1, "s", kT0 + 1), StateConflict);
  record_signed(r, 0, "sig-a", kT0 + 10);
  CHECK(r.state == "partial");
  CHECK(awaiting(r) == std::vector<size_t>{1});
  CHECK_THROWS_AS(record_signed(r, 0, "again", kT0 + 11), StateConflict);  // answered already
  record_signed(r, *find_slot(r, "email:ext@example.com"), "sig-e", kT0 + 20);
  CHECK(r.signers[1].token_used == false);  // no token on this test slot
  record_signed(r, 2, "sig-c", kT0 + 30);
  CHECK(r.state == "complete");
  CHECK(r.closed_ms == kT0 + 30);
  CHECK(effective_state(r, kT0 + 10'000'000) == "complete");  // complete never expires
  CHECK(r.history.size() == 3);
  // Round trip through storage JSON.
  SigningRequest back = request_from_json(to_json(r, true));
  CHECK(to_json(back, true) == to_json(r, true));
  CHECK_FALSE(to_json(r, false).contains("owner"));
}

TEST_CASE("A decline ends the request for everyone") {
  SigningRequest r = make(three("sequential", kT0 + 60000));
  record_signed(r, 0, "sig-a", kT0 + 1);
  CHECK_THROWS_AS(record_declined(r, 1, "", kT0 + 2), InvalidInput);  // a reason is required
  CHECK(r.state == "partial");
  record_declined(r, 1, "wrong amount in clause 4", kT0 + 2);
  CHECK(r.state == "declined");
  CHECK(r.signers[1].reason == "wrong amount in clause 4");
  CHECK_THROWS_AS(record_signed(r, 2, "sig-c", kT0 + 3), StateConflict);
  CHECK_THROWS_AS(record_cancelled(r, "owner", "", kT0 + 3), StateConflict);
  CHECK(awaiting(r).empty());
}

TEST_CASE("Expiry comes from the injected clock") {
  SigningRequest r = make(three("parallel", kT0 + 5000));
  CHECK(awaiting(r) == std::vector<size_t>{0, 1, 2});  // parallel: everyone at once
  record_signed(r, 2, "sig-c", kT0 + 5000);            // at the deadline is still in time
  CHECK(effective_state(r, kT0 + 5000) == "partial");
  CHECK(effective_state(r, kT0 + 5001) == "expired");
  CHECK_FALSE(is_open(r, kT0 + 5001));
  CHECK_THROWS_WITH(record_signed(r, 0, "late", kT0 + 5001), Catch::Contains("expired"));
  CHECK_THROWS_AS(record_declined(r, 1, "late", kT0 + 6000), StateConflict);
  CHECK_THROWS_AS(record_cancelled(r, "owner", "", kT0 + 6000), StateConflict);
  CHECK(r.state == "partial");  // stored state untouched: expiry is derived
}

TEST_CASE("The requester may cancel an open request") {
  SigningRequest r = make(three("parallel", kT0 + 5000));
  record_cancelled(r, "user:owner", "superseded by v2", kT0 + 1);
  CHECK(r.state == "cancelled");
  CHECK(r.cancel_reason == "superseded by v2");
  CHECK_THROWS_AS(record_signed(r, 0, "s", kT0 + 2), StateConflict);
}

TEST_CASE("Creation input is validated") {
  auto bad = [](json b) { CHECK_THROWS_AS(parse_create(b, kT0), InvalidInput); };
  json ok = three("parallel", kT0 + 1000);
  CHECK_NOTHROW(parse_create(ok, kT0));
  json b = ok;
  b["deadline_ms"] = kT0;
  bad(b);  // not in the future
  b = ok;
  b["deadline_ms"] = kT0 + int64_t{400} * 86400 * 1000;
  bad(b);
  b = ok;
  b["order"] = "random";
  bad(b);
  b = ok;
  b["signers"] = json::array();
  bad(b);
  b = ok;
  b["signers"].push_back({{"user", "alice"}});
  bad(b);  // twice
  b = ok;
  b["signers"][1] = {{"email", "not-an-address"}};
  bad(b);
  b = ok;
  b["signers"][0] = {{"user", "alice"}, {"email", "a@b.c"}};
  bad(b);
  b = ok;
  b["surprise"] = 1;
  bad(b);
  b = ok;
  b["intent"] = "Approve!";
  bad(b);
  b = ok;
  b["version"] = 0;
  bad(b);
  bad(json::array());
}
