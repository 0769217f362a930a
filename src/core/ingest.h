// Ingester: incremental ingestion of a tree of JSONL files into the document store.
// A manifest (path, size, mtime, SHA-256 of the content) tells new, updated and
// unchanged files apart; the records of new and updated files are written through
// the store (so each is queued for sync), and a record whose stored document is
// already equal is skipped. A bad line is reported with its file and line number
// and does not stop the rest.
//
// Thread safety: Run() may be called from a worker thread; it takes `lock` around
// every use of the database, one file chunk at a time. Files are read and parsed one step
// ahead of the writing, on a thread of its own, outside the lock (core/ingest_reader.h).
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/json.h"
#include "core/sqlite.h"
#include "core/status.h"
#include "core/store.h"

namespace deltasync {

struct IngestOptions {
  std::string pattern = "**/*.jsonl";  // glob relative to the directory: **, *, ?
  std::string entity_type = "record";
  std::string id_field = "id";         // the record field that is the entity id (string or integer)
  bool incremental = true;             // false: every matching file is read again
  bool dry_run = false;                // classify and count, write nothing
  std::optional<int64_t> max_files;    // at most this many new or updated files per run
  bool skip_existing = false;          // never overwrite a stored record, only add new ones
  bool force_full_sync = false;        // ignore the manifest for this run
  int64_t chunk_records = 1000;        // records per transaction
};

struct IngestError {
  std::string file;  // relative path
  int64_t line = 0;  // 1-based; 0 for an error about the whole file
  std::string code;
  std::string message;
};

struct IngestReport {
  int64_t files_new = 0;
  int64_t files_updated = 0;
  int64_t files_unchanged = 0;
  int64_t files_skipped = 0;  // beyond max_files, left for a later run
  int64_t records_inserted = 0;
  int64_t records_updated = 0;
  int64_t records_unchanged = 0;
  int64_t bytes_read = 0;
  std::vector<IngestError> errors;
};

struct IngestProgress {
  int64_t files_done = 0;
  int64_t files_total = 0;
  int64_t records = 0;
  int64_t bytes = 0;
};

// Glob match of a '/'-separated relative path: `**` spans directories, `*` and `?` do not.
bool GlobMatch(std::string_view pattern, std::string_view path);

class Ingester {
 public:
  using Lock = std::function<std::unique_lock<std::recursive_mutex>()>;
  using Progress = std::function<void(const IngestProgress&)>;

  // REQUIRES: db has the client schema; the references outlive the ingester. `lock`
  // returns a held lock on the database, or an unlocked one when the client closed.
  Ingester(Database& db, Clock& clock, DocumentStore& store, JsonLimits limits);

  // Ingests (or, with dry_run, previews) `dir`. Records the run's status in the database
  // (in_progress while it runs, then completed or failed) unless dry_run.
  Result<IngestReport> Run(const std::string& dir, const IngestOptions& options, const Lock& lock,
                           const Progress& progress);

  // The last run: {status, startedAt, finishedAt, dir, counts..., error} as JSON, or "null".
  Result<std::string> StatusJson();
  // Forgets the manifest (the next run reads every file again) and the last status.
  Status Reset();

 private:
  Database& db_;
  Clock& clock_;
  DocumentStore& store_;
  JsonLimits limits_;
};

// At open, with no other client on the file: a run still recorded as in_progress was cut off
// (close() or the process ended during it), so it is recorded as failed, saying so; its
// finishedAt stays null. The next run goes on from the files it had finished.
Status MarkInterruptedIngest(Database& db);

// {"filesNew":..,"filesUpdated":..,"filesUnchanged":..,"filesSkipped":..,"recordsInserted":..,
//  "recordsUpdated":..,"recordsUnchanged":..,"bytesRead":..,"errors":[{file,line,code,message}]}
std::string IngestReportJson(const IngestReport& report);

}  // namespace deltasync
