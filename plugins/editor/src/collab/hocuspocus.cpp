// Hocuspocus's provider protocol on /v1/collab-hocuspocus: one socket
// carries several documents, each message names its document, and each
// document is authenticated by its own auth message (the token of a
// Vellum session, checked with ABI 1.4 ws_authenticate). Documents share
// rooms, storage and permissions with the y-websocket endpoint.
#include "collab.hpp"
#include "protocol.hpp"
#include "state.hpp"

namespace vellum::editor::collab {

using vellum::Error;

namespace {
// Wrong tokens tolerated on one socket before it is closed (tokens are long
// random strings: this bounds the lookups a socket can cause, not guessing).
constexpr uint32_t kMaxFailedAuth = 10;
}  // namespace

void Server::hp_on_open(vellum_conn_id conn, vellum::Request&) {
  // Nobody is known yet: the provider authenticates per document. The
  // per-user limit counts the socket from its first authentication.
  auto c = std::make_shared<Conn>();
  c->proto = Proto::kHocuspocus;
  c->tokens = cfg_.message_burst;
  c->refill_ms = host_.now_ms();
  size_t open_count = 0;
  {
    std::lock_guard<std::mutex> l(mu_);
    // Anyone may open this endpoint: until a socket authenticates, the
    // sockets without a user share one bound.
    if (unauthenticated_ < cfg_.max_unauthenticated_sockets) {
      ++unauthenticated_;
      conns_[conn] = c;
      open_count = conns_.size();
    }
  }
  if (!open_count) return host_.close(conn, kCloseTooManyForUser, "too many unauthenticated connections");
  m_connections_.record(static_cast<double>(open_count));
}

void Server::hp_on_message(vellum_conn_id conn, std::string_view data) {
  auto c = admit(conn);
  if (!c) return;
  try {
    const hocuspocus::Frame f = hocuspocus::parse(data);
    if (f.type == hocuspocus::kAuth) return hp_authenticate(conn, c, f.name, f.token);
    std::shared_ptr<Member> m;
    {
      std::lock_guard<std::mutex> l(mu_);
      auto it = c->members.find(f.name);
      if (it != c->members.end()) m = it->second;
    }
    // Not authenticated for this document (yet, or any more): Hocuspocus
    // holds such messages until an authentication that may never come; we
    // drop them.
    if (!m || m->gone) return;
    switch (f.type) {
      case hocuspocus::kSync:
      case hocuspocus::kAwareness:
      case hocuspocus::kQueryAwareness:
        handle_yjs(conn, *c, m, f.message, f.body);
        break;
      case hocuspocus::kStateless:
        // Application messages between the document's providers: relayed,
        // never stored, as a server whose onStateless hook broadcasts them.
        host_.broadcast(hocuspocus_room(m->doc_id), m->prefix + hocuspocus::stateless(f.payload), true, conn);
        break;
      case hocuspocus::kClose:
        // The provider detached: the document leaves the socket, which stays.
        drop(conn, *c, m, true);
        host_.send(conn, m->prefix + hocuspocus::close("provider_initiated"));
        break;
    }
  } catch (const DecodeError& e) {
    close(conn, *c, kCloseMalformed, std::string("malformed message: ") + e.what());
  }
}

void Server::hp_authenticate(vellum_conn_id conn, const std::shared_ptr<Conn>& c, std::string_view name,
                             std::string_view token) {
  const std::string prefix = hocuspocus::prefix(name);
  auto deny = [&](std::string_view reason) {
    host_.send(conn, prefix + hocuspocus::permission_denied(reason));
  };
  {
    std::lock_guard<std::mutex> l(mu_);
    // Already authenticated for this document: Hocuspocus ignores a second one too.
    if (c->members.count(name)) return;
  }
  std::optional<vellum::OwnedPrincipal> who;
  try {
    who = host_.ws_authenticate(conn, token);
  } catch (const Error& e) {
    if (e.status() != VELLUM_ERR_CONFLICT) throw;
    return deny("this connection is authenticated with another session");
  }
  if (!who) {
    if (++c->failed_auth >= kMaxFailedAuth)
      return close(conn, *c, kCloseUnauthorized, "too many failed authentications");
    return deny("invalid or expired token");
  }
  // The host binds a socket to one session, so the first principal stays
  // right for every later document (only this thread writes it, before
  // join() publishes it under mu_).
  if (!c->authenticated) c->who = std::move(*who);

  const std::string id(name);
  auto info = valid_id(id) ? docs_.find(id) : std::nullopt;
  // A caller who may not read gets the same answer as for a missing id.
  if (!info || info->trashed || !host_.authorize(c->who, "read", info->resource, info->owner))
    return deny("no such document");
  if (info->e2ee) return deny("an end-to-end encrypted document is served by /v1/collab-e2ee/{id}");
  {
    std::lock_guard<std::mutex> l(mu_);
    if (c->members.size() >= cfg_.max_documents_per_socket)
      return deny("too many documents on this connection");
  }
  auto m = std::make_shared<Member>();
  m->proto = Proto::kHocuspocus;
  m->doc_id = id;
  m->resource = info->resource;
  m->owner = info->owner;
  m->prefix = prefix;
  m->can_write = may_write_scope(c->who) && host_.authorize(c->who, "write", info->resource, info->owner);
  switch (join(conn, c, m, !c->authenticated)) {
    case 0:
      break;
    case kCloseTooManyForUser:
      return close(conn, *c, kCloseTooManyForUser, "too many connections for this user");
    default:
      return deny("too many connections for this document");
  }
  host_.send(conn, prefix + hocuspocus::authenticated(!m->can_write));
  try {
    open_yjs(conn, m);
  } catch (const std::exception& e) {
    host_.error(std::string("collab: cannot load a document: ") + e.what());
    evict(conn, *c, m, kCloseStorage, "the document cannot be loaded");
  }
}

}  // namespace vellum::editor::collab
