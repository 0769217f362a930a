#include "core/server.h"

#include <string>
#include <utility>
#include <vector>

#include "core/change_codec.h"
#include "core/server_codec.h"
#include "core/server_compat_codec.h"
#include "core/server_inspection.h"
#include "core/server_operation.h"
#include "core/server_sqlite_store.h"

namespace deltasync {

// Each operation decodes its request, runs on a session of the store through an Operation
// (server_operation.h) inside one transaction, and encodes the response.

SyncServerCore::SyncServerCore(ServerOptions options, std::shared_ptr<Clock> clock)
    : options_(std::move(options)), clock_(std::move(clock)) {}

Result<std::unique_ptr<SyncServerCore>> SyncServerCore::Open(const ServerOptions& options,
                                                             std::shared_ptr<Clock> clock) {
  std::unique_ptr<SyncServerCore> server(new SyncServerCore(options, std::move(clock)));
  Result<std::unique_ptr<ServerStore>> store = Status::Ok();
  if (options.postgres) {
    store = OpenPostgresServerStore(*options.postgres);
  } else {
    DatabaseOptions db_options;
    db_options.durability = options.durability;
    db_options.busy_timeout_ms = options.busy_timeout_ms;
    db_options.crash_at_commit = options.crash_at_commit;
    store = OpenSqliteServerStore(options.path, db_options);
  }
  if (!store.ok()) return store.status();
  server->store_ = std::move(store).value();
  return server;
}

void SyncServerCore::SetCommitListener(CommitListener listener) {
  std::lock_guard<std::mutex> lock(listener_mutex_);
  commit_listener_ = std::move(listener);
  if (commit_listener_ && !listening_) {
    listening_ = true;
    store_->ListenForOtherProcesses(
        [this](const std::string& user_id, int64_t head_version) { NotifyCommit(user_id, head_version); });
  }
}

void SyncServerCore::NotifyCommit(const std::string& user_id, int64_t head_version) {
  std::lock_guard<std::mutex> lock(listener_mutex_);
  if (commit_listener_) commit_listener_(user_id, head_version);
}

template <typename Body>
Result<std::string> SyncServerCore::WithSession(Body body) {
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    Result<std::string> result = Status::Ok();
    {
      Result<SessionLease> lease = store_->Acquire();
      if (!lease.ok()) {
        result = lease.status();
      } else {
        Operation op(*this, lease.value().session());
        result = body(op);
        // A request whose shared commit failed runs again (UNAVAILABLE), even when it failed on
        // its own: its error may rest on another request's writes that were not kept.
        Status durable = lease.value().Release();
        if (!durable.ok() && (result.ok() || durable.code() == StatusCode::kUnavailable)) result = durable;
        if (result.ok()) op.NotifyDurableCommit();
      }
    }
    if (result.ok() || result.status().code() != StatusCode::kUnavailable || attempt == kAttempts) return result;
  }
}

Result<std::string> SyncServerCore::Sync(const std::string& user_id, const std::string& request,
                                         const RequestContext& context) {
  return Exchange(user_id, request, context, /*pull=*/true);
}

Result<std::string> SyncServerCore::Push(const std::string& user_id, const std::string& request,
                                         const RequestContext& context) {
  return Exchange(user_id, request, context, /*pull=*/false);
}

Result<std::string> SyncServerCore::Exchange(const std::string& user_id, const std::string& request,
                                             const RequestContext& context, bool pull) {
  PushRequest push;
  {
    ParserPool::Lease parsers = parsers_.Borrow();
    DS_RETURN_IF_ERROR(DecodePushRequest(parsers.parser(), request, pull, context, options_.limits, &push));
  }
  return WithSession([&](Operation& op) -> Result<std::string> {
    SessionTransaction tx(op.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    Result<std::pair<int64_t, int64_t>> before = op.UserVersion(user_id);
    if (!before.ok()) return before.status();
    std::vector<Outcome> outcomes;
    op.UseResolver(context);
    DS_RETURN_IF_ERROR(op.PushChanges(user_id, push.device_id, push.changes, &outcomes));
    if (op.AwaitingResolver()) return op.ResolverRequest();  // rolled back: nothing applied
    std::string out = "{";
    DS_RETURN_IF_ERROR(op.AppendOutcomes(user_id, outcomes, V2Outcomes(), &out));
    out.push_back(',');
    if (pull) {
      DS_RETURN_IF_ERROR(op.AppendPull(user_id, push.device_id, push.last_known_version,
                                         push.limit.value_or(static_cast<int64_t>(options_.limits.default_pull_limit)),
                                         op.RemainingBudget(out.size()), &out, before.value().first));
    } else {
      Result<std::pair<int64_t, int64_t>> latest = op.UserVersion(user_id);
      if (!latest.ok()) return latest.status();
      out.append("\"latestServerVersion\":").append(std::to_string(latest.value().first));
    }
    out.push_back('}');
    DS_RETURN_IF_ERROR(op.Commit(tx));
    return out;
  });
}

Result<std::string> SyncServerCore::Pull(const std::string& user_id, const std::optional<std::string>& device_id,
                                         int64_t since, std::optional<int64_t> limit) {
  if (since < 0) return ExpectedError("a non-negative integer", "since", std::to_string(since) + " of type number");
  const int64_t max_limit = static_cast<int64_t>(options_.limits.max_pull_limit);
  if (limit && (*limit < 1 || *limit > max_limit)) {
    return ExpectedError("an integer from 1 to " + std::to_string(max_limit), "limit",
                         std::to_string(*limit) + " of type number");
  }
  return WithSession([&](Operation& op) -> Result<std::string> {
    SessionTransaction tx(op.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    std::string out = "{";
    DS_RETURN_IF_ERROR(op.AppendPull(user_id, device_id, since,
                                       limit.value_or(static_cast<int64_t>(options_.limits.default_pull_limit)),
                                       options_.limits.max_response_bytes, &out));
    out.push_back('}');
    DS_RETURN_IF_ERROR(op.Commit(tx));
    return out;
  });
}

Result<std::string> SyncServerCore::DeviceStatus(const std::string& user_id, const std::string& device_id) {
  return WithSession([&](Operation& op) -> Result<std::string> {
    std::string out;
    DS_RETURN_IF_ERROR(op.AppendDeviceStatus(user_id, device_id, &out));
    return out;
  });
}

Result<std::string> SyncServerCore::Conflicts(const std::string& user_id, int64_t after) {
  return WithSession([&](Operation& op) -> Result<std::string> {
    std::string out;
    DS_RETURN_IF_ERROR(op.AppendOpenConflicts(user_id, after, &out));
    return out;
  });
}

Result<std::string> SyncServerCore::Inspect(const InspectQuery& query) {
  return WithSession([&](Operation& op) { return Inspection(*this, op).Run(query); });
}

Result<std::string> SyncServerCore::ResolveConflict(const std::string& user_id, int64_t conflict_id,
                                                    const std::string& resolution) {
  Resolution parsed;
  {
    ParserPool::Lease parsers = parsers_.Borrow();
    DS_RETURN_IF_ERROR(ParseResolution(parsers.parser(), resolution, options_.limits, &parsed));
  }
  return WithSession([&](Operation& op) { return Resolve(op, user_id, conflict_id, parsed); });
}

Result<std::string> SyncServerCore::Resolve(Operation& op, const std::string& user_id, int64_t conflict_id,
                                            const Resolution& resolution) {
  const std::string& use = resolution.use;
  SessionTransaction tx(op.session(), user_id);
  DS_RETURN_IF_ERROR(tx.status());
  ChangeInput change;
  std::string device_id;
  DS_RETURN_IF_ERROR(op.LoadOpenConflict(user_id, conflict_id, &change, &device_id));
  Result<EntityRow> entity = op.LoadEntity(user_id, change.entity_type, change.entity_id);
  if (!entity.ok()) return entity.status();
  std::optional<int64_t> version;
  if (use != "server") {
    DS_RETURN_IF_ERROR(PlanResolution(op.scratch(), use, resolution.data, entity.value(), &change));
    change.timestamp = clock_->NowMs();
    Result<int64_t> applied = op.Write(user_id, device_id, change, change.data, entity.value(), "manual:" + use);
    if (!applied.ok()) return applied.status();
    version = applied.value();
    DS_RETURN_IF_ERROR(op.FlushCounter());
  }
  DS_RETURN_IF_ERROR(op.CloseConflict(user_id, conflict_id, use));
  // A replay of the original change now reports how it was settled.
  {
    Outcome recorded;
    Result<std::optional<std::string>> fingerprint = op.FindRecordedOutcome(user_id, *change.change_id, &recorded);
    if (!fingerprint.ok()) return fingerprint.status();
    if (fingerprint.value()) {
      Outcome outcome;
      outcome.kind = version ? Outcome::Kind::kApplied : Outcome::Kind::kConflict;
      outcome.change_id = *change.change_id;
      outcome.entity_type = change.entity_type;
      outcome.entity_id = change.entity_id;
      outcome.action = ActionName(change.type);
      outcome.version = version;
      outcome.conflict_id = conflict_id;
      outcome.strategy = "manual";
      outcome.winner = use;
      outcome.reason = "settled by resolveConflict";
      DS_RETURN_IF_ERROR(op.RecordOutcome(user_id, *fingerprint.value(), outcome));
    }
  }
  Result<EntityRow> after = op.LoadEntity(user_id, change.entity_type, change.entity_id);
  if (!after.ok()) return after.status();
  const EntityRow& now = after.value();
  std::string out;
  JsonObjectWriter(&out)
      .Int("conflictId", conflict_id)
      .String("resolution", use)
      .OptionalInt("version", version)
      .String("entityType", change.entity_type)
      .String("entityId", change.entity_id)
      .OptionalInt("serverVersion", now.found ? std::optional<int64_t>(now.version) : std::nullopt)
      .OptionalRaw("serverData", now.found && !now.deleted ? now.data : std::nullopt)
      .Close();
  DS_RETURN_IF_ERROR(op.Commit(tx));
  return out;
}

Result<std::string> SyncServerCore::ImportSnapshot(const std::string& user_id, const std::string& state,
                                                   const CompatOptions& compat) {
  std::vector<ChangeInput> changes;
  {
    ParserPool::Lease parsers = parsers_.Borrow();
    DS_RETURN_IF_ERROR(DecodeSnapshot(parsers.parser(), parsers.scratch(), state, compat, options_.limits, &changes));
  }
  return Import(user_id, changes, "{");
}

Result<std::string> SyncServerCore::CompatMigrate(const std::string& user_id, const std::string& body,
                                                  const CompatOptions& compat) {
  std::vector<ChangeInput> changes;
  {
    ParserPool::Lease parsers = parsers_.Borrow();
    DS_RETURN_IF_ERROR(
        DecodeMigrateRequest(parsers.parser(), parsers.scratch(), body, compat, options_.limits, &changes));
  }
  return Import(user_id, changes, "{\"success\":true,");
}

Result<std::string> SyncServerCore::Import(const std::string& user_id, const std::vector<ChangeInput>& changes,
                                           std::string_view opening) {
  return WithSession([&](Operation& op) -> Result<std::string> {
    SessionTransaction tx(op.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    int64_t imported = 0, skipped = 0;
    for (size_t i = 0; i < changes.size(); ++i) {
      std::vector<Outcome> outcomes;
      DS_RETURN_IF_ERROR(op.ProcessChange(user_id, "snapshot", changes[i], i, &outcomes));
      if (!outcomes.empty() && !outcomes.back().replayed && outcomes.back().kind == Outcome::Kind::kApplied &&
          outcomes.back().version) {
        ++imported;
      } else {
        ++skipped;
      }
    }
    DS_RETURN_IF_ERROR(op.FlushCounter());
    Result<std::pair<int64_t, int64_t>> latest = op.UserVersion(user_id);
    if (!latest.ok()) return latest.status();
    DS_RETURN_IF_ERROR(op.Commit(tx));
    return std::string(opening) + "\"imported\":" + std::to_string(imported) +
           ",\"skipped\":" + std::to_string(skipped) +
           ",\"latestServerVersion\":" + std::to_string(latest.value().first) + "}";
  });
}

Result<std::string> SyncServerCore::CompatPush(const std::string& user_id, const std::string& body,
                                               const CompatOptions& compat, const RequestContext& context) {
  return CompatExchange(user_id, body, compat, context, /*push=*/true, /*pull=*/false);
}

Result<std::string> SyncServerCore::CompatPull(const std::string& user_id, const std::string& body,
                                               const CompatOptions& compat) {
  return CompatExchange(user_id, body, compat, {}, /*push=*/false, /*pull=*/true);
}

Result<std::string> SyncServerCore::CompatFull(const std::string& user_id, const std::string& body,
                                               const CompatOptions& compat, const RequestContext& context) {
  return CompatExchange(user_id, body, compat, context, /*push=*/true, /*pull=*/true);
}

// {"success":true[,"applied":..,"conflicts":..,"errors":..][,"changes":..,"timestamp":..,"hasMore":..
// [,"conflicts":[]],"deviceId":..]}: what /push, /pull and /full answer.
Result<std::string> SyncServerCore::CompatExchange(const std::string& user_id, const std::string& body,
                                                   const CompatOptions& compat, const RequestContext& context,
                                                   bool push, bool pull) {
  CompatRequest request;
  {
    ParserPool::Lease parsers = parsers_.Borrow();
    DS_RETURN_IF_ERROR(DecodeCompatRequest(parsers.parser(), parsers.scratch(), body, compat, options_.limits, push, pull,
                                           &request));
  }
  return WithSession([&](Operation& op) -> Result<std::string> {
    SessionTransaction tx(op.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    std::string out = "{\"success\":true";
    if (push) {
      op.UseContentAddressedIds();
      op.UseResolver(context);
      std::vector<Outcome> outcomes;
      DS_RETURN_IF_ERROR(op.PushChanges(user_id, request.device_id, request.changes, &outcomes));
      if (op.AwaitingResolver()) return op.ResolverRequest();  // rolled back: nothing applied
      out.push_back(',');
      DS_RETURN_IF_ERROR(op.AppendOutcomes(user_id, outcomes, CompatOutcomes(), &out));
    }
    if (pull) {
      std::string pulled;
      bool has_more = false;
      Result<int64_t> next = op.AppendEntitiesSince(user_id, request.since.value_or(0), compat,
                                                      op.RemainingBudget(out.size()), &pulled, &has_more);
      if (!next.ok()) return next.status();
      Result<std::pair<int64_t, int64_t>> latest = op.UserVersion(user_id);
      if (!latest.ok()) return latest.status();
      DS_RETURN_IF_ERROR(op.TouchDevicePull(user_id, request.device_id, latest.value().first));
      out += ",\"changes\":" + pulled + ",\"timestamp\":";
      AppendJsonString(&out, FormatIso8601(next.value()));
      out += ",\"hasMore\":" + std::string(has_more ? "true" : "false");
      if (!push) out += ",\"conflicts\":[]";
      out += ",\"deviceId\":";
      AppendJsonString(&out, request.device_id);
    }
    out.push_back('}');
    DS_RETURN_IF_ERROR(op.Commit(tx));
    return out;
  });
}

Result<std::string> SyncServerCore::CompatChanges(const std::string& user_id, const std::optional<std::string>& since,
                                                  const CompatOptions& compat) {
  std::optional<int64_t> since_ms = int64_t{0};
  if (since) {
    since_ms = ParseIso8601Ms(*since);
    if (!since_ms) return ExpectedError("an ISO 8601 time", "since", "\"" + since->substr(0, 40) + "\" of type string");
  }
  return WithSession([&](Operation& op) -> Result<std::string> {
    SessionTransaction tx(op.session(), user_id);
    DS_RETURN_IF_ERROR(tx.status());
    std::string entities;
    bool has_more = false;
    Result<int64_t> next = op.AppendEntitiesSince(user_id, *since_ms, compat,
                                                    options_.limits.max_response_bytes, &entities, &has_more);
    if (!next.ok()) return next.status();
    std::string out = "{\"since\":";
    if (since) {
      AppendJsonString(&out, *since);
    } else {
      out += "null";
    }
    out += ",\"updatedAt\":";
    AppendJsonString(&out, FormatIso8601(next.value()));
    out += ",\"hasMore\":" + std::string(has_more ? "true" : "false") + ",\"entities\":" + entities + "}";
    DS_RETURN_IF_ERROR(op.Commit(tx));
    return out;
  });
}

Result<std::string> SyncServerCore::CompatResolve(const std::string& user_id, const std::string& body) {
  CompatResolveRequest request;
  {
    ParserPool::Lease parsers = parsers_.Borrow();
    DS_RETURN_IF_ERROR(DecodeCompatResolve(parsers.parser(), body, options_.limits, &request));
  }
  return WithSession([&](Operation& op) -> Result<std::string> {
    Result<std::string> resolved = Resolve(op, user_id, request.conflict_id, request.resolution);
    if (!resolved.ok()) return resolved;
    return "{\"success\":true," + resolved.value().substr(1);
  });
}

}  // namespace deltasync
