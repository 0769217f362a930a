// 13: JoiningThread runs its body on a thread of its own with the stack it promises and joins
// it whatever way its scope is left; StatusOfWork turns what work throws into a Status.
#include <gtest/gtest.h>

#include <atomic>
#include <new>
#include <stdexcept>
#include <thread>

#include "core/joining_thread.h"
#include "test_util.h"

#if defined(__linux__)
#include <pthread.h>
#endif

namespace deltasync {
namespace {

using testing_util::HasCode;

TEST(JoiningThread, RunsItsBodyOnAnotherThreadAndJoinsIt) {
  std::atomic<bool> ran{false};
  std::thread::id body_thread;
  {
    JoiningThread thread([&] {
      body_thread = std::this_thread::get_id();
      ran.store(true);
    });
    ASSERT_TRUE(thread.started());
  }  // joined here: the body has finished
  EXPECT_TRUE(ran.load());
  EXPECT_NE(body_thread, std::this_thread::get_id());
}

#if defined(__linux__)
TEST(JoiningThread, GivesItsThreadTheStackItPromises) {
  size_t stack_bytes = 0;
  {
    JoiningThread thread([&] {
      pthread_attr_t attributes;
      if (pthread_getattr_np(pthread_self(), &attributes) != 0) return;
      pthread_attr_getstacksize(&attributes, &stack_bytes);
      pthread_attr_destroy(&attributes);
    });
    ASSERT_TRUE(thread.started());
  }
  EXPECT_GE(stack_bytes, JoiningThread::kStackBytes);
}
#endif

TEST(StatusOfWork, TurnsWhatWorkThrowsIntoAStatus) {
  EXPECT_TRUE(StatusOfWork([] { return Status::Ok(); }).ok());
  EXPECT_TRUE(HasCode(StatusOfWork([] { return Status::InvalidArgument("no"); }), StatusCode::kInvalidArgument));
  const Status out_of_memory = StatusOfWork([]() -> Status { throw std::bad_alloc(); });
  EXPECT_TRUE(HasCode(out_of_memory, StatusCode::kInternal));
  EXPECT_EQ(out_of_memory.message(), "Out of memory");
  const Status failed = StatusOfWork([]() -> Status { throw std::runtime_error("broken"); });
  EXPECT_TRUE(HasCode(failed, StatusCode::kInternal));
  EXPECT_EQ(failed.message(), "broken");
}

}  // namespace
}  // namespace deltasync
