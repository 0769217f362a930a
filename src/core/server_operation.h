// One operation of the sync server on one session of its store. It reads the state a decision
// needs, asks server_decisions.h, writes the outcome, and encodes what the store holds with
// server_codec.h. Its SQL is written once, in the dialect every store runs
// (server_operation.cc). Internal to the server core: server.cc's operations are its only users.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/server.h"
#include "core/server_codec.h"
#include "core/server_decisions.h"
#include "core/server_store.h"
#include "simdjson.h"

namespace deltasync {

class SyncServerCore::Operation {
 public:
  Operation(SyncServerCore& server, SqlSession& session) : s_(server), session_(session) {}

  SqlSession& session() { return session_; }
  simdjson::ondemand::parser& scratch() { return session_.scratch_parser(); }

  // What is left of the response byte budget once `used` bytes are written.
  size_t RemainingBudget(size_t used) const;

  // ---- state

  Result<EntityRow> LoadEntity(const std::string& user_id, const std::string& entity_type,
                               const std::string& entity_id);

  // Commits the operation's transaction (which the store may make durable later, with others':
  // SessionLease::Release).
  Status Commit(SessionTransaction& tx);
  // Once the commit is durable: tells the commit listener when the user's log advanced.
  void NotifyDurableCommit();

  // The entity's state at `version`, rebuilt from its log (nullopt: absent or deleted then).
  Result<std::optional<std::string>> StateAt(const std::string& user_id, std::string_view entity_type,
                                             std::string_view entity_id, int64_t version);

  // How many conflicts of the user are open.
  Result<int64_t> OpenConflictCount(const std::string& user_id);

  // Writes the user's version counter, advanced by Write(), before the transaction commits.
  Status FlushCounter();

  // (version, last server timestamp) of a user, including changes applied in this operation.
  Result<std::pair<int64_t, int64_t>> UserVersion(const std::string& user_id);

  // The outcome recorded for a changeId, into `outcome`, with the fingerprint of the change it
  // was recorded for; nullopt when the changeId is unused.
  Result<std::optional<std::string>> FindRecordedOutcome(const std::string& user_id,
                                                         const std::string& change_id,
                                                         Outcome* outcome);

  // Applies `data` (for UPDATED: the fields to set) and logs it. Returns the new version.
  Result<int64_t> Write(const std::string& user_id, const std::string& device_id,
                        const ChangeInput& change, const std::optional<std::string>& data,
                        const EntityRow& entity, const std::string& resolution);

  // Records a change's outcome under its changeId, for replays to return.
  Status RecordOutcome(const std::string& user_id, const std::string& fingerprint,
                       const Outcome& outcome);

  // Set by the compatible routes: their changeIds are derived from the records' content.
  void UseContentAddressedIds() { content_addressed_ids_ = true; }

  // Takes the host's verdicts, checked against the document limits.
  void UseResolver(const RequestContext& context);

  // Whether custom conflicts wait for the host's resolver: then nothing may be committed.
  bool AwaitingResolver() const { return !resolver_contexts_.empty(); }
  std::string ResolverRequest() const {
    return "{\"resolverContexts\":" + resolver_contexts_ + "]}";
  }

  // Decides and applies one change. A changeId reused with other content is a request-level
  // CONFLICT.
  Status ProcessChange(const std::string& user_id, const std::string& device_id,
                       const ChangeInput& input, size_t index, std::vector<Outcome>* outcomes);

  // Runs the changes of one request in order; the caller holds a transaction.
  Status PushChanges(const std::string& user_id, const std::string& device_id,
                     const std::vector<ChangeInput>& changes, std::vector<Outcome>* outcomes);

  // Notes that the device pulled, up to `seen_version`.
  Status TouchDevicePull(const std::string& user_id, const std::string& device_id,
                         int64_t seen_version);

  // The change a manual conflict holds and the device that sent it; NOT_FOUND unless it is open.
  Status LoadOpenConflict(const std::string& user_id, int64_t conflict_id, ChangeInput* change,
                          std::string* device_id);

  // Marks an open manual conflict resolved with `use`.
  Status CloseConflict(const std::string& user_id, int64_t conflict_id, const std::string& use);

  // ---- encoding what the store holds

  // {deviceId, lastPushAt, lastPullAt, changesPushed, conflictsReported, lastSeenVersion,
  // openConflicts, latestServerVersion}; NOT_FOUND for a device that never synced.
  Status AppendDeviceStatus(const std::string& user_id, const std::string& device_id,
                            std::string* out);

  // The user's open conflicts with an id above `after`, as a JSON array, oldest first. Past the
  // response budget the list stops (one conflict always goes): the caller asks again after the
  // last id it got.
  Status AppendOpenConflicts(const std::string& user_id, int64_t after, std::string* out);

  // "applied":[...],"conflicts":[...],"errors":[...] of a response: the v2 one or the
  // compatible routes', whose items say the same in other words (OutcomeShape).
  Status AppendOutcomes(const std::string& user_id, const std::vector<Outcome>& outcomes,
                        const OutcomeShape& shape, std::string* out);

  // "newChanges":[...],"latestServerVersion":n,"headVersion":n,"hasMore":b[,"resync":true]
  // At most `limit` changes and, past the first, at most `max_bytes` of them.
  // latestServerVersion is where this page brings the device (its next cursor), headVersion
  // the user's newest version. A cursor ahead of the head means the database went back in
  // time (a restored backup, a lost WAL): the page then starts from 0 and says "resync".
  // `history_head`: the head before this request's own pushes (they must not hide a cursor
  // that is ahead of the server's history); the head now when absent.
  Status AppendPull(const std::string& user_id, const std::optional<std::string>& device_id,
                    int64_t since, int64_t limit, size_t max_bytes, std::string* out,
                    std::optional<int64_t> history_head = {});

  // "changes"/"entities": {entityType: [records]} of entities changed after `since` (server time),
  // at most kCompatPullLimit of them and, past the first, at most `max_bytes` of records.
  // Returns the time to send as the next `since` (server times are unique per user, so paging
  // by them neither skips nor repeats a record).
  Result<int64_t> AppendEntitiesSince(const std::string& user_id, int64_t since,
                                      const CompatOptions& compat, size_t max_bytes,
                                      std::string* out, bool* has_more);

 private:
  // The strategy configured for the entity type, else the server's default.
  ConflictStrategy StrategyFor(const std::string& entity_type) const;

  // The user's version counter is read once per operation, advanced in memory for each
  // applied change, and written back by FlushCounter() inside the same transaction.
  Result<std::pair<int64_t, int64_t>> NextVersion(const std::string& user_id);

  // The user's (version, last server timestamp) as committed.
  Result<std::pair<int64_t, int64_t>> StoredUserVersion(const std::string& user_id);

  // The compatible routes derive a changeId from the record's content, so a record set back to
  // an earlier value would look like a replay of the push that first sent that value. A
  // content key whose recorded version is not the entity's current one is followed by the
  // key "<key>@<that version>": the first key along that chain that is unused names a new
  // change (a revert), and one whose version is current is a replay. So a revert applies,
  // and a retry of it (same content, nothing in between) is recognised.
  Status RekeyRevert(const std::string& user_id, ChangeInput* change);

  // What other devices logged for the change's entity after its baseVersion.
  Result<std::vector<ServerChange>> ServerChangesSince(const std::string& user_id,
                                                       const std::string& device_id,
                                                       const ChangeInput& change);

  // Adds what the host's resolver is given for a custom conflict.
  Status AskResolver(const std::string& user_id, const std::string& device_id,
                     const ChangeInput& change, const EntityRow& entity);

  // Opens a manual conflict for the change. Returns its id.
  Result<int64_t> OpenManualConflict(const std::string& user_id, const std::string& device_id,
                                     const ChangeInput& change, const EntityRow& entity);

  // ,"serverVersion":..,"serverData":.. of the outcome's entity as it is now.
  Status AppendCurrentState(const std::string& user_id, const Outcome& outcome,
                            ServerDataBudget& budget, std::string* out);

  SyncServerCore& s_;
  SqlSession& session_;
  std::string counter_user_;
  int64_t counter_version_ = 0;
  int64_t counter_timestamp_ = 0;
  bool counter_loaded_ = false;
  bool counter_dirty_ = false;
  bool content_addressed_ids_ = false;
  bool advanced_ = false;  // the user's version counter was written: the log advanced
  bool committed_ = false;
  ResolverState resolver_;
  std::string resolver_contexts_;  // "[{...},...", what the host's resolver is asked
};

}  // namespace deltasync
