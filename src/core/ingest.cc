#include "core/ingest.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <system_error>
#include <utility>

#include "core/change_codec.h"
#include "core/sha256.h"

namespace deltasync {

namespace {

namespace fs = std::filesystem;

constexpr const char* kManifestGet =
    "SELECT size, mtime_ms, sha256 FROM ingest_files WHERE root = ?1 AND path = ?2";
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

struct FileEntry {
  std::string relative;
  fs::path absolute;
  int64_t size = 0;
  int64_t mtime_ms = 0;
};

struct ManifestRow {
  bool found = false;
  int64_t size = 0;
  int64_t mtime_ms = 0;
  std::string sha256;
};

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

Result<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Storage("Could not open " + path.string());
  std::string data;
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  if (size < 0) return Status::Storage("Could not read " + path.string());
  in.seekg(0, std::ios::beg);
  data.reserve(static_cast<size_t>(size) + simdjson::SIMDJSON_PADDING);
  data.resize(static_cast<size_t>(size));
  if (size > 0 && !in.read(data.data(), size)) return Status::Storage("Could not read " + path.string());
  return data;
}

void AppendInt(std::string* out, const char* name, int64_t value) {
  out->append(",\"").append(name).append("\":").append(std::to_string(value));
}

// The entity id held by a record's id field, given that field's canonical value: a string,
// or an integer within int64; empty for anything else.
std::string EntityIdFrom(simdjson::ondemand::parser& parser, std::string_view canonical_value) {
  if (canonical_value.size() >= 2 && canonical_value.front() == '"' &&
      canonical_value.find('\\') == std::string_view::npos) {
    return std::string(canonical_value.substr(1, canonical_value.size() - 2));  // nothing to unescape
  }
  simdjson::padded_string padded(canonical_value);
  simdjson::ondemand::document value;
  simdjson::ondemand::json_type type;
  if (parser.iterate(padded).get(value) != simdjson::SUCCESS || value.type().get(type) != simdjson::SUCCESS) {
    return std::string();
  }
  std::string_view text;
  int64_t number = 0;
  if (type == simdjson::ondemand::json_type::string && value.get_string().get(text) == simdjson::SUCCESS) {
    return std::string(text);
  }
  if (type == simdjson::ondemand::json_type::number && value.get_int64().get(number) == simdjson::SUCCESS) {
    return std::to_string(number);
  }
  return std::string();
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
  std::vector<FileEntry> files;
  for (fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    // Lexically: the name in the directory, even when it is a link to somewhere else.
    std::string relative = it->path().lexically_relative(root).generic_string();
    if (relative.empty() || !GlobMatch(options.pattern, relative)) continue;
    FileEntry entry;
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
  std::sort(files.begin(), files.end(), [](const FileEntry& a, const FileEntry& b) { return a.relative < b.relative; });
  const bool use_manifest = options.incremental && !options.force_full_sync;

  // REQUIRES: the lock is held. Records the stat taken before the file was read.
  auto record_manifest = [&](const FileEntry& file, const std::string& hash, int64_t records) -> Status {
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

  IngestProgress state;
  state.files_total = static_cast<int64_t>(files.size());
  int64_t processed_files = 0;
  simdjson::ondemand::parser parser;
  std::string canonical;
  for (const FileEntry& file : files) {
    ManifestRow manifest;
    {
      Result<std::unique_lock<std::recursive_mutex>> held = locked();
      if (!held.ok()) return held.status();
      Result<Statement*> stmt = db_.Cached(kManifestGet);
      if (!stmt.ok()) return stmt.status();
      Statement::Scope scope(*stmt.value());
      scope->BindText(1, root_key);
      scope->BindText(2, file.relative);
      Result<bool> row = scope->Step();
      if (!row.ok()) return row.status();
      if (row.value()) {
        manifest.found = true;
        manifest.size = scope->Int(0);
        manifest.mtime_ms = scope->Int(1);
        manifest.sha256 = std::string(scope->Text(2));
      }
    }
    if (use_manifest && manifest.found && manifest.size == file.size && manifest.mtime_ms == file.mtime_ms) {
      ++report.files_unchanged;
      ++state.files_done;
      if (progress) progress(state);
      continue;
    }
    if (options.max_files && processed_files >= *options.max_files) {
      ++report.files_skipped;
      ++state.files_done;
      if (progress) progress(state);
      continue;
    }
    Result<std::string> content = ReadFile(file.absolute);
    if (!content.ok()) {
      report.errors.push_back(IngestError{file.relative, 0, CodeName(content.status().code()), content.status().message()});
      ++state.files_done;
      if (progress) progress(state);
      continue;
    }
    const std::string hash = Sha256::Hex(content.value());
    report.bytes_read += static_cast<int64_t>(content.value().size());
    state.bytes += static_cast<int64_t>(content.value().size());
    if (use_manifest && manifest.found && manifest.sha256 == hash) {
      // Touched but not changed: remember the new stat so the next run does not read it again.
      ++report.files_unchanged;
      ++state.files_done;
      if (progress) progress(state);
      if (!options.dry_run) {
        Result<std::unique_lock<std::recursive_mutex>> held = locked();
        if (!held.ok()) return held.status();
        DS_RETURN_IF_ERROR(record_manifest(file, hash, 0));
      }
      continue;
    }
    ++processed_files;
    if (manifest.found) {
      ++report.files_updated;
    } else {
      ++report.files_new;
    }

    // Records, line by line; a chunk of them per transaction.
    const std::string& text = content.value();
    const size_t capacity = text.capacity();
    int64_t line_number = 0;
    int64_t file_records = 0;
    size_t position = 0;
    if (text.empty() && !options.dry_run) {
      Result<std::unique_lock<std::recursive_mutex>> held = locked();
      if (!held.ok()) return held.status();
      DS_RETURN_IF_ERROR(record_manifest(file, hash, 0));
    }
    while (position < text.size()) {
      Result<std::unique_lock<std::recursive_mutex>> held = locked();
      if (!held.ok()) return held.status();
      std::optional<Transaction> tx;
      if (!options.dry_run) {
        tx.emplace(db_);
        DS_RETURN_IF_ERROR(tx->status());
      }
      for (int64_t in_chunk = 0; in_chunk < options.chunk_records && position < text.size();) {
        size_t end = text.find('\n', position);
        if (end == std::string::npos) end = text.size();
        ++line_number;
        std::string_view line(text.data() + position, end - position);
        const size_t line_start = position;
        position = end + 1;
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
        if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
        ++in_chunk;
        auto fail = [&](const std::string& code, const std::string& message) {
          report.errors.push_back(IngestError{file.relative, line_number, code, message});
        };
        // The line is parsed in place: the file buffer holds SIMDJSON_PADDING spare bytes at its end.
        simdjson::padded_string_view view(text.data() + line_start, line.size(), capacity - line_start);
        simdjson::ondemand::document doc;
        simdjson::ondemand::value value;
        simdjson::ondemand::json_type type;
        if (auto error = parser.iterate(view).get(doc)) {
          fail("INVALID_ARGUMENT", std::string("Malformed JSON (") + simdjson::error_message(error) + ")");
          continue;
        }
        if (auto error = doc.get_value().get(value)) {
          // A line that is one bare word or number is no record: say what a line must be.
          fail("INVALID_ARGUMENT", error == simdjson::SCALAR_DOCUMENT_AS_VALUE
                                       ? std::string("Expected a JSON object on each line")
                                       : std::string("Malformed JSON (") + simdjson::error_message(error) + ")");
          continue;
        }
        if (auto error = value.type().get(type)) {
          fail("INVALID_ARGUMENT", std::string("Malformed JSON (") + simdjson::error_message(error) + ")");
          continue;
        }
        if (type != simdjson::ondemand::json_type::object) {
          fail("INVALID_ARGUMENT", "Expected a JSON object on each line");
          continue;
        }
        canonical.clear();
        TopLevelField id_field{options.id_field};
        Status copied = CopyValidatedJson(value, 0, limits_, "record", &canonical, &id_field);
        if (!copied.ok()) {
          fail(CodeName(copied.code()), copied.message());
          continue;
        }
        if (!doc.at_end()) {
          fail("INVALID_ARGUMENT", "Trailing content after the record");
          continue;
        }
        const std::string entity_id =
            id_field.found ? EntityIdFrom(parser, std::string_view(canonical).substr(id_field.begin, id_field.end - id_field.begin))
                           : std::string();
        if (entity_id.empty() || entity_id.size() > 256) {
          fail("INVALID_ARGUMENT", "Expected a string or integer id of 1-256 bytes in field \"" + options.id_field + "\"");
          continue;
        }
        // The chunk's transaction is the unit: a failed write fails the whole ingest, rolled back.
        Result<DocumentStore::PutOutcome> written = store_.PutUnlessEqualInTransaction(
            options.entity_type, entity_id, canonical, options.skip_existing, options.dry_run);
        if (!written.ok()) return written.status();
        ++file_records;
        ++state.records;
        switch (written.value()) {
          case DocumentStore::PutOutcome::kUnchanged: ++report.records_unchanged; break;
          case DocumentStore::PutOutcome::kUpdated: ++report.records_updated; break;
          case DocumentStore::PutOutcome::kInserted: ++report.records_inserted; break;
        }
      }
      if (position >= text.size() && !options.dry_run) {
        // The manifest records the stat taken before reading, so a change made while the file
        // was read shows up as a newer mtime in the next run.
        DS_RETURN_IF_ERROR(record_manifest(file, hash, file_records));
      }
      if (tx) DS_RETURN_IF_ERROR(tx->Commit());
      held.value().unlock();
      if (progress) progress(state);
    }
    ++state.files_done;
    if (progress) progress(state);
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
