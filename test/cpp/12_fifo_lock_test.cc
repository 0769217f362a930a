// 12: FifoLock hands the lock to waiters in the order they asked for it, and the SQLite server
// store lends its one session through it.
#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "core/fifo_lock.h"

namespace deltasync {
namespace {

// Waits (without sleeping a fixed time) until `n` threads wait for the lock.
void WaitForWaiters(const FifoLock& lock, uint64_t n) {
  while (lock.waiting() < n) std::this_thread::yield();
}

TEST(FifoLock, WaitersGetTheLockInTheOrderTheyAsked) {
  FifoLock lock;
  lock.lock();
  std::mutex order_mutex;
  std::vector<int> order;
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] {
      lock.lock();
      {
        std::lock_guard<std::mutex> guard(order_mutex);
        order.push_back(i);
      }
      lock.unlock();
    });
    WaitForWaiters(lock, static_cast<uint64_t>(i) + 1);  // thread i holds ticket i + 1
  }
  EXPECT_EQ(lock.waiting(), 6u);
  lock.unlock();
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(lock.waiting(), 0u);
}

TEST(FifoLock, TheHolderThatReleasesQueuesBehindThoseAlreadyWaiting) {
  FifoLock lock;
  lock.lock();
  std::vector<int> order;  // written only while holding `lock`
  std::thread waiter([&] {
    lock.lock();
    order.push_back(1);
    lock.unlock();
  });
  WaitForWaiters(lock, 1);
  lock.unlock();
  lock.lock();  // asks again at once: a plain mutex could give it back to this thread first
  order.push_back(2);
  lock.unlock();
  waiter.join();
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace deltasync
