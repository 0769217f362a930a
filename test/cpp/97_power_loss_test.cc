// 97: power loss. The fault VFS remembers each file as of its last fsync; a simulated power
// cut throws away everything written after it (the client's connection dies with it), and
// the database is reopened from what was on the platter. With durability full, every write
// that returned is there; with normal, a prefix of them is (the last commits may be gone),
// and the file is never corrupt.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/client.h"
#include "core/env.h"
#include "fault_vfs.h"
#include "test_util.h"

namespace deltasync {
namespace {

using testing_util::FaultVfs;
using testing_util::ScopedDefaultVfs;
using testing_util::TempDir;

constexpr int kWrites = 40;

std::unique_ptr<Client> OpenClient(const std::string& path, Durability durability) {
  ClientOptions options;
  options.path = path;
  options.durability = durability;
  ScopedDefaultVfs through_fault_vfs;
  Result<std::unique_ptr<Client>> client =
      Client::Open(options, std::make_shared<ManualClock>(1700000000000), std::make_shared<SeededRandom>(5));
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(client).value() : nullptr;
}

// How many of the notes n0..n{kWrites-1} the reopened client holds, checking that they are a
// prefix (n0..n{k-1}, none after a gap), each with its queued change, and that the file is whole.
int SurvivingPrefix(Client& client) {
  Result<std::unique_ptr<Statement>> integrity = client.database().Prepare("PRAGMA integrity_check");
  EXPECT_TRUE(integrity.ok());
  if (integrity.ok()) {
    Result<bool> row = integrity.value()->Step();
    EXPECT_TRUE(row.ok() && row.value());
    if (row.ok() && row.value()) {
      EXPECT_EQ(integrity.value()->Text(0), "ok");
    }
  }
  int surviving = 0;
  bool gap = false;
  for (int i = 0; i < kWrites; ++i) {
    Result<std::optional<StoredDocument>> doc = client.store().Get("note", "n" + std::to_string(i), false);
    EXPECT_TRUE(doc.ok());
    const bool present = doc.ok() && doc.value().has_value();
    if (present) {
      EXPECT_FALSE(gap) << "n" << i << " survived although an earlier write did not";
      ++surviving;
    } else {
      gap = true;
    }
  }
  Result<QueueStats> stats = client.queue().Stats();
  EXPECT_TRUE(stats.ok());
  if (stats.ok()) {
    EXPECT_EQ(stats.value().pending, surviving) << "each surviving write has its queued change";
  }
  return surviving;
}

// Writes kWrites notes one transaction each, then cuts the power after `acknowledged` of them
// returned (the rest are written after the cut: a dead process never writes them).
int RunAndCut(Durability durability, int acknowledged) {
  TempDir dir;
  const std::string path = dir.File("client.db");
  FaultVfs& vfs = FaultVfs::Get();
  vfs.TrackDurability(true);
  std::unique_ptr<Client> client = OpenClient(path, durability);
  if (!client) return -1;
  for (int i = 0; i < kWrites; ++i) {
    if (i == acknowledged) vfs.PowerCut();
    Status written = client->store().Put("note", "n" + std::to_string(i), R"({"v":)" + std::to_string(i) + "}").status();
    EXPECT_TRUE(written.ok()) << written.ToString();
  }
  client.reset();  // the dead process's connection goes away; nothing it writes now reaches the disk
  vfs.Restore();
  std::unique_ptr<Client> reopened = OpenClient(path, durability);
  const int surviving = reopened ? SurvivingPrefix(*reopened) : -1;
  reopened.reset();
  vfs.TrackDurability(false);
  return surviving;
}

TEST(PowerLoss, FullDurabilityKeepsEveryAcknowledgedWrite) {
  for (int acknowledged : {1, 7, 25, kWrites}) {
    SCOPED_TRACE("acknowledged " + std::to_string(acknowledged));
    EXPECT_EQ(RunAndCut(Durability::kFull, acknowledged), acknowledged);
  }
  testing_util::RecordFigures({{"powerCuts", 3}});
}

TEST(PowerLoss, NormalDurabilityLosesAtMostTheLastCommitsAndNeverCorrupts) {
  for (int acknowledged : {1, 7, 25, kWrites}) {
    SCOPED_TRACE("acknowledged " + std::to_string(acknowledged));
    const int surviving = RunAndCut(Durability::kNormal, acknowledged);
    EXPECT_GE(surviving, 0);
    EXPECT_LE(surviving, acknowledged);
  }
  testing_util::RecordFigures({{"powerCuts", 3}});
}

// The simulation itself: without a power cut, the same run keeps everything, so a loss above
// is the cut's doing; and with normal durability a cut does lose unsynced commits (the check
// above can tell the two settings apart).
TEST(PowerLoss, TheSimulationLosesOnlyWhatWasNotSynced) {
  EXPECT_EQ(RunAndCut(Durability::kNormal, kWrites), kWrites) << "no cut: a clean close keeps everything";
  EXPECT_LT(RunAndCut(Durability::kNormal, 25), 25) << "synchronous=NORMAL does not fsync each WAL commit";
}

}  // namespace
}  // namespace deltasync
