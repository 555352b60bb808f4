// Plugin timers on the host's io_context.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "runtime.hpp"

namespace vellum::host {

struct Timers::Impl {
  struct Timer {
    uint64_t id;
    vellum_plugin* plugin;
    std::chrono::milliseconds interval;
    vellum_timer_fn fn;
    std::shared_ptr<OwnedUser> user;
    boost::asio::steady_timer timer;
    std::mutex run_mu;  // held while fn runs: cancel() waits for it
    std::atomic<bool> cancelled{false};
    std::atomic<std::thread::id> running_on{};
    Timer(boost::asio::io_context& io, uint64_t i, vellum_plugin* p, std::chrono::milliseconds iv,
          vellum_timer_fn f, std::shared_ptr<OwnedUser> u)
        : id(i), plugin(p), interval(iv), fn(f), user(std::move(u)), timer(io) {}
  };
  explicit Impl(boost::asio::io_context& i) : io(i) {}
  boost::asio::io_context& io;
  std::mutex mu;
  uint64_t last_id = 0;
  std::unordered_map<uint64_t, std::shared_ptr<Timer>> timers;

  void arm(const std::shared_ptr<Timer>& t, std::chrono::milliseconds delay) {
    t->timer.expires_after(delay);
    t->timer.async_wait([this, t](const boost::system::error_code& ec) {
      if (ec || t->cancelled) return;
      {
        std::lock_guard run(t->run_mu);
        if (t->cancelled) return;
        t->running_on = std::this_thread::get_id();
        t->fn(t->user->user);
        t->running_on = std::thread::id{};
      }
      if (t->interval.count() > 0 && !t->cancelled) {
        arm(t, t->interval);
      } else {
        std::lock_guard lk(mu);
        timers.erase(t->id);
      }
    });
  }
};

Timers::Timers(boost::asio::io_context& io) : impl_(std::make_unique<Impl>(io)) {}
Timers::~Timers() = default;

uint64_t Timers::start(vellum_plugin* p, uint64_t delay_ms, uint64_t interval_ms, vellum_timer_fn fn,
                       std::shared_ptr<OwnedUser> user) {
  std::shared_ptr<Impl::Timer> t;
  {
    std::lock_guard lk(impl_->mu);
    t = std::make_shared<Impl::Timer>(impl_->io, ++impl_->last_id, p, std::chrono::milliseconds(interval_ms),
                                      fn, std::move(user));
    impl_->timers[t->id] = t;
  }
  impl_->arm(t, std::chrono::milliseconds(delay_ms));
  return t->id;
}

bool Timers::cancel(const vellum_plugin* p, uint64_t id) {
  std::shared_ptr<Impl::Timer> t;
  {
    std::lock_guard lk(impl_->mu);
    auto it = impl_->timers.find(id);
    if (it == impl_->timers.end() || it->second->plugin != p) return false;
    t = it->second;
    impl_->timers.erase(it);
  }
  t->cancelled = true;
  // Wait for a running callback unless we are inside it.
  if (t->running_on.load() != std::this_thread::get_id()) std::lock_guard run(t->run_mu);
  boost::asio::post(impl_->io, [t] { t->timer.cancel(); });
  return true;
}

void Timers::cancel_all(const vellum_plugin* p) {
  std::vector<uint64_t> ids;
  {
    std::lock_guard lk(impl_->mu);
    for (auto& [id, t] : impl_->timers)
      if (t->plugin == p) ids.push_back(id);
  }
  for (auto id : ids) cancel(p, id);
}

}  // namespace vellum::host
