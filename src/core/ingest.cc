#include "core/ingest.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "core/change_codec.h"
#include "core/ingest_reader.h"

namespace deltasync {

namespace {

namespace fs = std::filesystem;

constexpr const char* kManifestOfRoot =
    "SELECT path, size, mtime_ms, sha256 FROM ingest_files WHERE root = ?1";
constexpr const char* kManifestPut =
    "INSERT INTO ingest_files (root, path, size, mtime_ms, sha256, records, ingested_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (root, path) DO UPDATE SET size = excluded.size, "
    "mtime_ms = excluded.mtime_ms, sha256 = excluded.sha256, records = excluded.records, "
    "ingested_at = excluded.ingested_at";
constexpr const char* kGetStatus = "SELECT value FROM meta WHERE key = 'ingest_status'";
constexpr const char* kMarkInterrupted =
    "UPDATE meta SET value = json_set(value, '$.status', 'failed', '$.error', "
    "'interrupted: the client closed or the process ended during the run; the next ingest() goes on') "
    "WHERE key = 'ingest_status' AND json_extract(value, '$.status') = 'in_progress'";
constexpr const char* kSetStatus =
    "INSERT INTO meta (key, value) VALUES ('ingest_status', ?1) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value";

// The file's mtime in milliseconds of the filesystem clock: a stable key for the manifest
// (not necessarily Unix time; it is only compared with itself).
int64_t MtimeMs(const fs::file_time_type& time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

bool GlobMatchFrom(std::string_view pattern, std::string_view path) {
  while (!pattern.empty()) {
    if (pattern.substr(0, 3) == "**/") {
      // Zero or more whole directories.
      std::string_view rest = pattern.substr(3);
      if (GlobMatchFrom(rest, path)) return true;
      for (size_t slash = path.find('/'); slash != std::string_view::npos; slash = path.find('/', slash + 1)) {
        if (GlobMatchFrom(rest, path.substr(slash + 1))) return true;
      }
      return false;
    }
    if (pattern.substr(0, 2) == "**") {
      std::string_view rest = pattern.substr(2);
      for (size_t i = 0; i <= path.size(); ++i) {
        if (GlobMatchFrom(rest, path.substr(i))) return true;
      }
      return false;
    }
    const char p = pattern.front();
    if (p == '*') {
      std::string_view rest = pattern.substr(1);
      for (size_t i = 0; i <= path.size(); ++i) {
        if (GlobMatchFrom(rest, path.substr(i))) return true;
        if (i < path.size() && path[i] == '/') break;
      }
      return false;
    }
    if (path.empty()) return false;
    if (p == '?') {
      if (path.front() == '/') return false;
    } else if (p != path.front()) {
      return false;
    }
    pattern.remove_prefix(1);
    path.remove_prefix(1);
  }
  return path.empty();
}

void AppendInt(std::string* out, const char* name, int64_t value) {
  out->append(",\"").append(name).append("\":").append(std::to_string(value));
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view path) { return GlobMatchFrom(pattern, path); }

std::string IngestReportJson(const IngestReport& report) {
  std::string out = "{\"filesNew\":" + std::to_string(report.files_new);
  AppendInt(&out, "filesUpdated", report.files_updated);
  AppendInt(&out, "filesUnchanged", report.files_unchanged);
  AppendInt(&out, "filesSkipped", report.files_skipped);
  AppendInt(&out, "recordsInserted", report.records_inserted);
  AppendInt(&out, "recordsUpdated", report.records_updated);
  AppendInt(&out, "recordsUnchanged", report.records_unchanged);
  AppendInt(&out, "bytesRead", report.bytes_read);
  out += ",\"errors\":[";
  for (size_t i = 0; i < report.errors.size(); ++i) {
    const IngestError& error = report.errors[i];
    if (i > 0) out.push_back(',');
    out += "{\"file\":";
    AppendJsonString(&out, error.file);
    out += ",\"line\":" + std::to_string(error.line) + ",\"code\":";
    AppendJsonString(&out, error.code);
    out += ",\"message\":";
    AppendJsonString(&out, error.message);
    out.push_back('}');
  }
  out += "]}";
  return out;
}

Ingester::Ingester(Database& db, Clock& clock, DocumentStore& store, JsonLimits limits)
    : db_(db), clock_(clock), store_(store), limits_(limits) {}

Result<std::string> Ingester::StatusJson() {
  Result<Statement*> stmt = db_.Cached(kGetStatus);
  if (!stmt.ok()) return stmt.status();
  Statement::Scope scope(*stmt.value());
  Result<bool> row = scope->Step();
  if (!row.ok()) return row.status();
  if (!row.value()) return std::string("null");
  return std::string(scope->Text(0));
}

Status Ingester::Reset() {
  Transaction tx(db_);
  DS_RETURN_IF_ERROR(tx.status());
  DS_RETURN_IF_ERROR(db_.Exec("DELETE FROM ingest_files; DELETE FROM meta WHERE key = 'ingest_status'"));
  return tx.Commit();
}

Result<IngestReport> Ingester::Run(const std::string& dir, const IngestOptions& options, const Lock& lock,
                                   const Progress& progress) {
  auto locked = [&]() -> Result<std::unique_lock<std::recursive_mutex>> {
    std::unique_lock<std::recursive_mutex> held = lock();
    if (!held.owns_lock()) return Status::Closed("The client was closed during ingestion");
    return held;
  };
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(fs::path(dir), ec);
  if (ec || !fs::is_directory(root, ec)) {
    return ExpectedError("a directory", "dir", "\"" + dir + "\", which is not one");
  }
  const std::string root_key = root.string();
  // Every use of db_, clock_ and store_ happens under the lock: they belong to the client, which
  // close() may destroy between two locked sections.
  int64_t started_at = 0;
  {
    Result<std::unique_lock<std::recursive_mutex>> held = locked();
    if (!held.ok()) return held.status();
    started_at = clock_.NowMs();
  }
  auto set_status = [&](const std::string& status, const IngestReport* report, const std::string& error) -> Status {
    if (options.dry_run) return Status::Ok();
    Result<std::unique_lock<std::recursive_mutex>> held = locked();
    if (!held.ok()) return held.status();
    std::string json = "{\"status\":";
    AppendJsonString(&json, status);
    json += ",\"dir\":";
    AppendJsonString(&json, root_key);
    json += ",\"startedAt\":" + std::to_string(started_at) + ",\"finishedAt\":";
    json += status == "in_progress" ? std::string("null") : std::to_string(clock_.NowMs());
    json += ",\"report\":" + (report ? IngestReportJson(*report) : std::string("null")) + ",\"error\":";
    if (error.empty()) {
      json += "null";
    } else {
      AppendJsonString(&json, error);
    }
    json.push_back('}');
    Result<Statement*> stmt = db_.Cached(kSetStatus);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, json);
    return scope->Run();
  };
  DS_RETURN_IF_ERROR(set_status("in_progress", nullptr, ""));

  Result<IngestReport> outcome = [&]() -> Result<IngestReport> {
  IngestReport report;
  // Discover, in a stable order.
  std::vector<IngestFile> files;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    // Lexically: the name in the directory, even when it is a link to somewhere else.
    std::string relative = it->path().lexically_relative(root).generic_string();
    if (relative.empty() || !GlobMatch(options.pattern, relative)) continue;
    IngestFile entry;
    entry.absolute = it->path();
    if (it->is_symlink(ec)) {
      // Ingestion is confined to its directory: a link is followed only to a file inside it,
      // so that a link (or --pattern '**') cannot queue /etc/passwd for sync.
      std::error_code resolve_error;
      const fs::path target = fs::canonical(it->path(), resolve_error);
      const fs::path inside = resolve_error ? fs::path() : fs::relative(target, root, resolve_error);
      if (resolve_error || inside.empty() || *inside.begin() == "..") {
        report.errors.push_back(IngestError{relative, 0, "INVALID_ARGUMENT",
                                            "A symbolic link to a file outside the ingested directory: not read"});
        continue;
      }
      entry.absolute = target;
    }
    entry.relative = std::move(relative);
    entry.size = static_cast<int64_t>(it->file_size(ec));
    entry.mtime_ms = MtimeMs(it->last_write_time(ec));
    files.push_back(std::move(entry));
  }
  std::sort(files.begin(), files.end(), [](const IngestFile& a, const IngestFile& b) { return a.relative < b.relative; });

  // REQUIRES: the lock is held. Records the stat taken before the file was read.
  auto record_manifest = [&](const IngestFile& file, const std::string& hash, int64_t records) -> Status {
    Result<Statement*> stmt = db_.Cached(kManifestPut);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, root_key);
    scope->BindText(2, file.relative);
    scope->BindInt(3, file.size);
    scope->BindInt(4, file.mtime_ms);
    scope->BindText(5, hash);
    scope->BindInt(6, records);
    scope->BindInt(7, clock_.NowMs());
    return scope->Run();
  };

  Manifest manifest;
  {
    Result<std::unique_lock<std::recursive_mutex>> held = locked();
    if (!held.ok()) return held.status();
    Result<Statement*> stmt = db_.Cached(kManifestOfRoot);
    if (!stmt.ok()) return stmt.status();
    Statement::Scope scope(*stmt.value());
    scope->BindText(1, root_key);
    for (;;) {
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (!row.value()) break;
      manifest[std::string(scope->Text(0))] = ManifestRow{scope->Int(1), scope->Int(2), std::string(scope->Text(3))};
    }
  }

  // REQUIRES: the lock is held. Writes `step` in one transaction: a failed write fails the
  // whole ingest, rolled back to the last chunk.
  auto write_step = [&](const IngestStep& step) -> Status {
    std::optional<Transaction> tx;
    if (!options.dry_run) {
      tx.emplace(db_);
      DS_RETURN_IF_ERROR(tx->status());
    }
    for (size_t i = 0; i < step.chunk.count; ++i) {
      const RecordChunk::Record& record = step.chunk.records[i];
      Result<DocumentStore::PutOutcome> written = store_.PutUnlessEqualInTransaction(
          options.entity_type, record.entity_id, record.canonical, options.skip_existing, options.dry_run);
      if (!written.ok()) return written.status();
      switch (written.value()) {
        case DocumentStore::PutOutcome::kUnchanged: ++report.records_unchanged; break;
        case DocumentStore::PutOutcome::kUpdated: ++report.records_updated; break;
        case DocumentStore::PutOutcome::kInserted: ++report.records_inserted; break;
      }
    }
    if (!options.dry_run && (step.write == IngestStep::Write::kManifest || step.chunk.reaches_end)) {
      // The manifest records the stat taken before reading, so a change made while the file
      // was read shows up as a newer mtime in the next run.
      DS_RETURN_IF_ERROR(record_manifest(*step.file, step.sha256, step.file_records));
    }
    return tx ? tx->Commit() : Status::Ok();
  };

  // The reader runs one step ahead, on a thread of its own, while the writer holds the lock
  // for the step before.
  IngestReader reader(files, std::move(manifest), options, limits_);
  IngestStep steps[2];
  IngestStep* current = &steps[0];
  IngestStep* next = &steps[1];
  IngestReadAhead ahead(reader);
  ahead.Start(current);
  DS_RETURN_IF_ERROR(ahead.Wait());
  IngestProgress state;
  state.files_total = static_cast<int64_t>(files.size());
  for (;;) {
    const bool more = !reader.done();
    if (more) ahead.Start(next);
    {
      // Taken for every step, written or not, so that a close() ends even a dry run here.
      Result<std::unique_lock<std::recursive_mutex>> held = locked();
      if (!held.ok()) return held.status();  // `ahead` finishes the step it reads as it goes
      if (current->write != IngestStep::Write::kNothing) DS_RETURN_IF_ERROR(write_step(*current));
    }
    const IngestReport& counted = current->counted;
    report.files_new += counted.files_new;
    report.files_updated += counted.files_updated;
    report.files_unchanged += counted.files_unchanged;
    report.files_skipped += counted.files_skipped;
    report.bytes_read += counted.bytes_read;
    report.errors.insert(report.errors.end(), counted.errors.begin(), counted.errors.end());
    report.errors.insert(report.errors.end(), current->chunk.errors.begin(), current->chunk.errors.end());
    state.files_done += current->files_done;
    state.bytes += counted.bytes_read;
    state.records += static_cast<int64_t>(current->chunk.count);
    if (progress) progress(state);
    if (!more) break;
    DS_RETURN_IF_ERROR(ahead.Wait());
    std::swap(current, next);
  }
  return report;
  }();
  if (!outcome.ok()) {
    set_status("failed", nullptr, outcome.status().ToString());  // best effort: the client may be closed
    return outcome;
  }
  DS_RETURN_IF_ERROR(set_status("completed", &outcome.value(), ""));
  return outcome;
}

Status MarkInterruptedIngest(Database& db) { return db.Exec(kMarkInterrupted); }

}  // namespace deltasync
