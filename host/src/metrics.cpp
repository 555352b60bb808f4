// Prometheus text exposition of host and plugin metrics.
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "runtime.hpp"

namespace vellum::host {
namespace {
constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                             0.05,   0.1,   0.25,   0.5,   1,    5};

struct Histogram {
  std::array<uint64_t, kBuckets.size()> counts{};
  uint64_t count = 0;
  double sum = 0;
  void observe(double v) {
    for (size_t i = 0; i < kBuckets.size(); ++i)
      if (v <= kBuckets[i]) ++counts[i];
    ++count;
    sum += v;
  }
};

std::string fmt(double v) {
  if (std::isinf(v)) return "+Inf";
  char b[64];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

std::string escape_label(std::string_view s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o.push_back('\\');
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o.push_back(c);
  }
  return o;
}

void render_histogram(std::ostringstream& os, const std::string& name, const std::string& labels,
                      const Histogram& h) {
  std::string sep = labels.empty() ? "" : ",";
  for (size_t i = 0; i < kBuckets.size(); ++i)
    os << name << "_bucket{" << labels << sep << "le=\"" << fmt(kBuckets[i]) << "\"} " << h.counts[i] << "\n";
  os << name << "_bucket{" << labels << sep << "le=\"+Inf\"} " << h.count << "\n";
  os << name << "_sum" << (labels.empty() ? "" : "{" + labels + "}") << " " << fmt(h.sum) << "\n";
  os << name << "_count" << (labels.empty() ? "" : "{" + labels + "}") << " " << h.count << "\n";
}
}  // namespace

struct Metrics::Impl {
  std::mutex mu;
  std::map<std::tuple<std::string, std::string, uint16_t>, uint64_t> requests;
  std::map<std::string, Histogram> latency;  // by route
  int64_t ws_open = 0;
  uint64_t auth_throttled = 0;
  uint64_t ws_total = 0;
  std::map<std::string, uint64_t> plugin_errors;
  struct PluginMetric {
    const vellum_plugin* owner;
    std::string full_name, help;
    int32_t kind;
    double value = 0;
    Histogram hist;
  };
  std::vector<PluginMetric> plugin_metrics;  // id = index + 1
};

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {}
Metrics::~Metrics() = default;

void Metrics::observe_request(std::string_view method, std::string_view route, uint16_t status,
                              double seconds) {
  std::lock_guard lk(impl_->mu);
  ++impl_->requests[{std::string(method), std::string(route), status}];
  impl_->latency[std::string(route)].observe(seconds);
}
void Metrics::ws_opened() {
  std::lock_guard lk(impl_->mu);
  ++impl_->ws_open;
  ++impl_->ws_total;
}
void Metrics::ws_closed() {
  std::lock_guard lk(impl_->mu);
  --impl_->ws_open;
}
void Metrics::auth_throttled() {
  std::lock_guard lk(impl_->mu);
  ++impl_->auth_throttled;
}
void Metrics::plugin_error(std::string_view plugin) {
  std::lock_guard lk(impl_->mu);
  ++impl_->plugin_errors[std::string(plugin)];
}

vellum_status Metrics::register_metric(const vellum_plugin* p, int32_t kind, std::string_view name,
                                       std::string_view help, uint64_t* id, std::string* err) {
  if (kind < VELLUM_METRIC_COUNTER || kind > VELLUM_METRIC_HISTOGRAM) {
    *err = "unknown metric kind";
    return VELLUM_ERR_INVALID_ARGUMENT;
  }
  bool ok = !name.empty() && name.size() <= 100 &&
            (std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char c : name)
    ok = ok && (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
                c == '_');
  if (!ok) {
    *err = "metric names are [a-z_][a-z0-9_]*";
    return VELLUM_ERR_INVALID_ARGUMENT;
  }
  std::string plugin_part;
  for (char c : p->name) plugin_part.push_back(c == '-' ? '_' : c);
  std::string full = "vellum_plugin_" + plugin_part + "_" + std::string(name);
  std::lock_guard lk(impl_->mu);
  for (auto& m : impl_->plugin_metrics)
    if (m.full_name == full) {
      *err = "metric '" + full + "' is already registered";
      return VELLUM_ERR_CONFLICT;
    }
  impl_->plugin_metrics.push_back({p, full, std::string(help), kind, 0, {}});
  *id = impl_->plugin_metrics.size();
  return VELLUM_OK;
}

vellum_status Metrics::record(const vellum_plugin* p, uint64_t id, double v) {
  std::lock_guard lk(impl_->mu);
  if (id == 0 || id > impl_->plugin_metrics.size() || !std::isfinite(v)) return VELLUM_ERR_INVALID_ARGUMENT;
  auto& m = impl_->plugin_metrics[id - 1];
  if (m.owner != p) return VELLUM_ERR_NOT_FOUND;  // plugins record only their own metrics
  switch (m.kind) {
    case VELLUM_METRIC_COUNTER:
      if (v < 0) return VELLUM_ERR_INVALID_ARGUMENT;  // counters only go up
      m.value += v;
      break;
    case VELLUM_METRIC_GAUGE:
      m.value = v;
      break;
    default:
      m.hist.observe(v);
  }
  return VELLUM_OK;
}

std::string Metrics::render() const {
  std::lock_guard lk(impl_->mu);
  std::ostringstream os;
  os << "# HELP vellum_http_requests_total HTTP requests by route and status.\n"
        "# TYPE vellum_http_requests_total counter\n";
  for (auto& [k, n] : impl_->requests)
    os << "vellum_http_requests_total{method=\"" << escape_label(std::get<0>(k)) << "\",route=\""
       << escape_label(std::get<1>(k)) << "\",status=\"" << std::get<2>(k) << "\"} " << n << "\n";
  os << "# HELP vellum_http_request_duration_seconds Time from request read to response queued.\n"
        "# TYPE vellum_http_request_duration_seconds histogram\n";
  for (auto& [route, h] : impl_->latency)
    render_histogram(os, "vellum_http_request_duration_seconds", "route=\"" + escape_label(route) + "\"", h);
  os << "# HELP vellum_websocket_connections Open WebSocket connections.\n"
        "# TYPE vellum_websocket_connections gauge\nvellum_websocket_connections "
     << impl_->ws_open << "\n";
  os << "# HELP vellum_websocket_connections_total WebSocket connections accepted.\n"
        "# TYPE vellum_websocket_connections_total counter\nvellum_websocket_connections_total "
     << impl_->ws_total << "\n";
  os << "# HELP vellum_auth_throttled_total Login attempts refused by the progressive delay (429).\n"
        "# TYPE vellum_auth_throttled_total counter\nvellum_auth_throttled_total "
     << impl_->auth_throttled << "\n";
  os << "# HELP vellum_plugin_call_errors_total Error statuses returned by plugin callbacks.\n"
        "# TYPE vellum_plugin_call_errors_total counter\n";
  for (auto& [p, n] : impl_->plugin_errors)
    os << "vellum_plugin_call_errors_total{plugin=\"" << escape_label(p) << "\"} " << n << "\n";
  for (auto& m : impl_->plugin_metrics) {
    static const char* kinds[] = {"counter", "gauge", "histogram"};
    std::string help;  // HELP text escapes backslash and newline
    for (char c : m.help)
      help += c == '\\' ? std::string("\\\\") : c == '\n' ? std::string("\\n") : std::string(1, c);
    os << "# HELP " << m.full_name << " " << help << "\n# TYPE " << m.full_name << " " << kinds[m.kind]
       << "\n";
    if (m.kind == VELLUM_METRIC_HISTOGRAM)
      render_histogram(os, m.full_name, "", m.hist);
    else
      os << m.full_name << " " << fmt(m.value) << "\n";
  }
  return os.str();
}

}  // namespace vellum::host
