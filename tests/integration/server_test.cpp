// The HTTP/WebSocket server through real processes and real clients.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness.hpp"

using namespace vt;
using nlohmann::json;

namespace {
const char* kTestkit = "[plugins.testkit]\n";
void check_problem(const Response& r, int status) {
  CHECK(r.status == status);
  CHECK(r.header("Content-Type") == "application/problem+json");
  auto j = json::parse(r.body);
  CHECK(j["status"] == status);
  CHECK(j.contains("title"));
}
}  // namespace

TEST_CASE("TLS handshake verifies against the generated dev certificate -- keep-alive reuses it",
          "[server]") {
  Vellumd v({""});
  CHECK(v.url().rfind("https://127.0.0.1:", 0) == 0);
  CHECK_THAT(v.log(), Catch::Contains("SHA-256 fingerprint"));
  HttpClient c(v);  // verify_peer + host name check against dev-cert.pem
  for (int i = 0; i < 5; ++i) CHECK(c.get("/healthz").status == 200);
  CHECK(c.connects() == 1);
  CHECK(v.stop() == 0);
}

TEST_CASE("plain HTTP only when configured, and only on loopback", "[server]") {
  Vellumd v({"[server]\ntls = false\n"});
  CHECK(v.url().rfind("http://127.0.0.1:", 0) == 0);
  HttpClient c(v);
  CHECK(c.get("/healthz").body == R"({"status":"ok"})");
  CHECK(v.stop() == 0);
  TempDir d;
  write_file(d / "v.toml", "[server]\ntls = false\nlisten = \"0.0.0.0:8080\"\n");
  auto r = run({vellumd_path(), "check-config", "--config", d / "v.toml"});
  CHECK(r.exit_code != 0);
  CHECK_THAT(r.err, Catch::Contains("plain HTTP is allowed only on a loopback address"));
}

TEST_CASE("errors are problem+json: 404, 405, 431, 413, 400", "[server]") {
  Vellumd v({"[server]\nmax_header_bytes = 2048\nmax_body_bytes = 4096\n[plugins.testkit]\n"});
  HttpClient c(v);
  check_problem(c.get("/no/such/route"), 404);
  auto m = c.request("DELETE", "/healthz");
  check_problem(m, 405);
  CHECK(m.header("Allow") == "GET");
  {
    HttpClient big(v);
    check_problem(big.request("GET", "/healthz", "", {{"X-Big", std::string(4096, 'a')}}), 431);
  }
  {
    HttpClient big(v);
    check_problem(big.request("POST", "/v1/test/echo", std::string(5000, 'b')), 413);
  }
  {
    HttpClient bad(v);
    bad.send_raw("GARBAGE\r\n\r\n");
    check_problem(bad.read_response(), 400);
  }
  CHECK(c.request("POST", "/v1/test/echo", std::string(4000, 'c')).body.size() == 4000);
  CHECK(v.stop() == 0);
}

TEST_CASE("a slow client gets 408 and is disconnected -- idle keep-alive is closed", "[server]") {
  Vellumd v({"[server]\nread_timeout_ms = 300\nidle_timeout_ms = 400\n"});
  {
    HttpClient slow(v);
    slow.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // headers never finish
    auto r = slow.read_response();
    check_problem(r, 408);
    CHECK(slow.connection_closed());
  }
  {
    HttpClient idle(v);
    CHECK(idle.get("/healthz").status == 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    CHECK(idle.connection_closed());
  }
  CHECK(v.stop() == 0);
}

TEST_CASE("WebSocket upgrade, echo, rooms and close codes through a plugin", "[server][ws]") {
  Vellumd v({kTestkit});
  WsClient a(v, "/v1/test/ws");
  CHECK(a.read() == "welcome");
  a.send("ping");
  CHECK(a.read() == "ping");
  a.send(std::string("\x00\x01\xff", 3), true);
  CHECK(a.read() == std::string("\x00\x01\xff", 3));

  WsClient b(v, "/v1/test/ws");
  CHECK(b.read() == "welcome");
  a.send("join:r1");
  CHECK(a.read() == "joined");
  b.send("join:r1");
  CHECK(b.read() == "joined");
  a.send("say:r1:hello room");
  CHECK(b.read() == "hello room");  // the sender is excluded
  CHECK_THAT(HttpClient(v).get("/metrics").body, Catch::Contains("vellum_websocket_connections 2"));

  b.send("close");
  CHECK_FALSE(b.read().has_value());
  CHECK(b.close_code() == 4000);
  CHECK(b.close_reason() == "bye");

  // A failing message handler closes only that connection, with 1011.
  WsClient c(v, "/v1/test/ws");
  CHECK(c.read() == "welcome");
  c.send("throw");
  CHECK_FALSE(c.read().has_value());
  CHECK(c.close_code() == 1011);
  a.send("still here");
  CHECK(a.read() == "still here");

  // Oversized message (limit 64 KiB for this endpoint) closes with 1009.
  WsClient d(v, "/v1/test/ws");
  CHECK(d.read() == "welcome");
  d.send(std::string(70 * 1024, 'x'));
  CHECK_FALSE(d.read().has_value());
  INFO(d.close_reason());
  CHECK(d.close_code() == 1009);

  std::string body;
  CHECK(ws_upgrade_status(v, "/v1/test/ws?refuse=1", &body) == 403);
  CHECK(json::parse(body)["detail"] == "refused by request");
  CHECK(ws_upgrade_status(v, "/v1/nope/ws") == 404);
  CHECK(v.stop() == 0);
}

TEST_CASE("SIGTERM drains: in-flight requests finish, WebSockets get 1001, plugins stop",
          "[server][shutdown]") {
  Vellumd v({"[server]\nhandler_timeout_ms = 5000\n[plugins.testkit]\n"});
  WsClient ws(v, "/v1/test/ws");
  CHECK(ws.read() == "welcome");
  HttpClient idle(v);
  CHECK(idle.get("/healthz").status == 200);
  // An async request in flight when the signal arrives still gets its answer.
  HttpClient busy(v);
  Response async_result;
  std::string async_error;
  std::thread t([&] {
    try {
      async_result = busy.get("/v1/test/async?ms=300");
    } catch (const std::exception& e) {
      async_error = e.what();
    }
  });
  // Signal only once the server holds the request (a request still in transit
  // when the listener closes is not in flight).
  HttpClient probe(v);
  for (int i = 0; i < 2000 && json::parse(probe.get("/v1/test/inflight").body)["inflight"] == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  int code = v.stop();
  t.join();
  CHECK(code == 0);
  INFO(async_error);
  CHECK(async_result.status == 200);
  CHECK_FALSE(ws.read().has_value());
  INFO(ws.close_reason());
  CHECK(ws.close_code() == 1001);
  CHECK(idle.connection_closed());
  CHECK_THAT(v.log(), Catch::Contains("plugin 'testkit' stopped"));
}

TEST_CASE("openapi.json lists host and plugin routes -- metrics count requests", "[server]") {
  Vellumd v({kTestkit});
  HttpClient c(v);
  c.get("/healthz");
  auto doc = json::parse(c.get("/v1/openapi.json").body);
  CHECK(doc["openapi"] == "3.1.0");
  CHECK(doc["paths"]["/v1/test/echo"]["get"]["summary"] == "Echo the msg query parameter");
  CHECK(doc["paths"]["/v1/test/echo"]["get"]["tags"][0] == "testkit");
  CHECK(doc["paths"]["/v1/test/params/{a}/x/{b}"]["get"]["parameters"].size() == 2);
  CHECK(doc["paths"].contains("/v1/test/ws"));
  CHECK(doc["paths"]["/healthz"]["get"]["tags"][0] == "host");
  auto m = c.get("/metrics").body;
  CHECK_THAT(
      m, Catch::Contains("vellum_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"));
  CHECK_THAT(
      m, Catch::Contains("vellum_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 1"));
  CHECK(v.stop() == 0);
}

TEST_CASE("readyz is 503 until plugins have started", "[server]") {
  // testkit sleeps in start(); the listener is already open by then.
  Vellumd v({"[plugins.testkit]\nstart_delay_ms = 1500\n", false});
  v.wait_listening();
  HttpClient c(v);
  CHECK(c.get("/healthz").status == 200);
  auto r = c.get("/readyz");
  check_problem(r, 503);
  CHECK(json::parse(r.body)["detail"] == "plugins are starting");
  v.wait_ready();
  CHECK(c.get("/readyz").status == 200);
  CHECK(v.stop() == 0);
}
