#include "core/joining_thread.h"

#include <utility>

namespace deltasync {

#ifdef DELTASYNC_HAS_PTHREAD

namespace {
void* RunBody(void* self) {
  (*static_cast<std::function<void()>*>(self))();
  return nullptr;
}
}  // namespace

JoiningThread::JoiningThread(std::function<void()> body) : body_(std::move(body)) {
  pthread_attr_t attributes;
  if (pthread_attr_init(&attributes) != 0) return;
  if (pthread_attr_setstacksize(&attributes, kStackBytes) == 0) {
    started_ = pthread_create(&thread_, &attributes, &RunBody, &body_) == 0;
  }
  pthread_attr_destroy(&attributes);
}

JoiningThread::~JoiningThread() {
  if (started_) pthread_join(thread_, nullptr);
}

#else

JoiningThread::JoiningThread(std::function<void()> body) : body_(std::move(body)) {
  try {
    thread_ = std::thread([this] { body_(); });
    started_ = true;
  } catch (const std::system_error&) {
    started_ = false;
  }
}

JoiningThread::~JoiningThread() {
  if (started_) thread_.join();
}

#endif

}  // namespace deltasync
