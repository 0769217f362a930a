// simdjson parsers for the work a request does before it borrows a store session (decoding its
// body), so that work runs outside the store's lock. A parser keeps its buffers between uses.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "simdjson.h"

namespace deltasync {

class ParserPool {
 public:
  // Two parsers (the second for nested documents), given back to the pool when it goes.
  class Lease {
   public:
    Lease(ParserPool& pool, std::unique_ptr<simdjson::ondemand::parser> parser,
          std::unique_ptr<simdjson::ondemand::parser> scratch)
        : pool_(pool), parser_(std::move(parser)), scratch_(std::move(scratch)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      pool_.GiveBack(std::move(parser_));
      pool_.GiveBack(std::move(scratch_));
    }
    simdjson::ondemand::parser& parser() { return *parser_; }
    simdjson::ondemand::parser& scratch() { return *scratch_; }

   private:
    ParserPool& pool_;
    std::unique_ptr<simdjson::ondemand::parser> parser_;
    std::unique_ptr<simdjson::ondemand::parser> scratch_;
  };

  Lease Borrow() {
    auto parser = Take();
    auto scratch = Take();
    return Lease(*this, std::move(parser), std::move(scratch));
  }

 private:
  std::unique_ptr<simdjson::ondemand::parser> Take() {
    std::lock_guard<std::mutex> guard(mutex_);
    if (idle_.empty()) return std::make_unique<simdjson::ondemand::parser>();
    std::unique_ptr<simdjson::ondemand::parser> parser = std::move(idle_.back());
    idle_.pop_back();
    return parser;
  }
  // A parser sized for a large body is let go, so the pool does not keep the largest body's
  // buffers for every thread that ever decoded one.
  void GiveBack(std::unique_ptr<simdjson::ondemand::parser> parser) {
    if (parser->capacity() > kKeepCapacity) return;
    std::lock_guard<std::mutex> guard(mutex_);
    idle_.push_back(std::move(parser));
  }

  static constexpr size_t kKeepCapacity = 1 << 20;

  std::mutex mutex_;
  std::vector<std::unique_ptr<simdjson::ondemand::parser>> idle_;  // guarded by mutex_
};

}  // namespace deltasync
