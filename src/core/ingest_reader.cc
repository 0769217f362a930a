#include "core/ingest_reader.h"

#include <fstream>
#include <optional>
#include <string_view>
#include <utility>

#include "core/change_codec.h"
#include "core/sha256.h"

namespace deltasync {

namespace {

Result<std::string> ReadFile(const std::filesystem::path& path) {
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

// Reads the next `options.chunk_records` non-blank lines of `text` (a file read by ReadFile,
// so with simdjson's padding in its capacity) from *position, advancing *position and
// *line_number: each line that is a record within `limits` goes to chunk->records, each
// other one to chunk->errors.
Status ReadRecordChunk(const std::string& text, const std::string& relative, const IngestOptions& options,
                       const JsonLimits& limits, simdjson::ondemand::parser& parser, size_t* position,
                       int64_t* line_number, RecordChunk* chunk) {
  chunk->count = 0;
  chunk->errors.clear();
  const size_t capacity = text.capacity();
  for (int64_t in_chunk = 0; in_chunk < options.chunk_records && *position < text.size();) {
    size_t end = text.find('\n', *position);
    if (end == std::string::npos) end = text.size();
    ++*line_number;
    std::string_view line(text.data() + *position, end - *position);
    const size_t line_start = *position;
    *position = end + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;  // blank line
    ++in_chunk;
    auto fail = [&](const std::string& code, const std::string& message) {
      chunk->errors.push_back(IngestError{relative, *line_number, code, message});
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
    RecordChunk::Record& record = chunk->Add();
    auto refuse = [&](const std::string& code, const std::string& message) {
      --chunk->count;  // the slot stays for the next record
      fail(code, message);
    };
    record.canonical.clear();
    TopLevelField id_field{options.id_field};
    Status copied = CopyValidatedJson(value, 0, limits, "record", &record.canonical, &id_field);
    if (!copied.ok()) {
      refuse(CodeName(copied.code()), copied.message());
      continue;
    }
    if (!doc.at_end()) {
      refuse("INVALID_ARGUMENT", "Trailing content after the record");
      continue;
    }
    record.entity_id =
        id_field.found
            ? EntityIdFrom(parser, std::string_view(record.canonical).substr(id_field.begin, id_field.end - id_field.begin))
            : std::string();
    if (record.entity_id.empty() || record.entity_id.size() > 256) {
      refuse("INVALID_ARGUMENT", "Expected a string or integer id of 1-256 bytes in field \"" + options.id_field + "\"");
    }
  }
  chunk->reaches_end = *position >= text.size();
  return Status::Ok();
}

}  // namespace

RecordChunk::Record& RecordChunk::Add() {
  if (count == records.size()) records.emplace_back();
  return records[count++];
}

IngestReader::IngestReader(const std::vector<IngestFile>& files, Manifest manifest, const IngestOptions& options,
                           JsonLimits limits)
    : files_(files),
      manifest_(std::move(manifest)),
      options_(options),
      limits_(limits),
      use_manifest_(options.incremental && !options.force_full_sync) {}

Status IngestReader::Next(IngestStep* step) {
  step->write = IngestStep::Write::kNothing;
  step->file = nullptr;
  step->chunk.count = 0;
  step->chunk.errors.clear();
  step->chunk.reaches_end = false;
  step->counted = IngestReport();
  step->files_done = 0;
  for (;;) {
    if (in_file_) {
      DS_RETURN_IF_ERROR(ReadRecordChunk(content_, file_->relative, options_, limits_, parser_, &position_,
                                         &line_number_, &step->chunk));
      file_records_ += static_cast<int64_t>(step->chunk.count);
      step->write = IngestStep::Write::kRecords;
      step->file = file_;
      step->sha256 = sha256_;
      step->file_records = file_records_;
      if (step->chunk.reaches_end) {
        in_file_ = false;
        step->files_done += 1;
        content_ = std::string();  // the file's memory goes now, not with the next file
      }
      return Status::Ok();
    }
    if (next_file_ == files_.size()) return Status::Ok();
    const IngestFile& file = files_[next_file_++];
    const auto listed = manifest_.find(file.relative);
    const ManifestRow* manifest = listed == manifest_.end() ? nullptr : &listed->second;
    if (use_manifest_ && manifest && manifest->size == file.size && manifest->mtime_ms == file.mtime_ms) {
      ++step->counted.files_unchanged;
      ++step->files_done;
      continue;
    }
    if (options_.max_files && files_read_ >= *options_.max_files) {
      ++step->counted.files_skipped;
      ++step->files_done;
      continue;
    }
    Result<std::string> content = ReadFile(file.absolute);
    if (!content.ok()) {
      step->counted.errors.push_back(
          IngestError{file.relative, 0, CodeName(content.status().code()), content.status().message()});
      ++step->files_done;
      continue;
    }
    std::string sha256 = Sha256::Hex(content.value());
    step->counted.bytes_read += static_cast<int64_t>(content.value().size());
    const bool unchanged = use_manifest_ && manifest && manifest->sha256 == sha256;
    if (!unchanged) {
      ++files_read_;
      ++(manifest ? step->counted.files_updated : step->counted.files_new);
    } else {
      ++step->counted.files_unchanged;
    }
    if (unchanged || content.value().empty()) {
      // Touched but not changed, or empty: the manifest row alone, with the new stat, so the
      // next run does not read it again. A file read ends a step even when nothing is written
      // (a dry run), so the ingester sees a close() between two files read.
      ++step->files_done;
      step->write = options_.dry_run ? IngestStep::Write::kNothing : IngestStep::Write::kManifest;
      step->file = &file;
      step->sha256 = std::move(sha256);
      step->file_records = 0;
      return Status::Ok();
    }
    in_file_ = true;
    file_ = &file;
    content_ = std::move(content).value();
    sha256_ = std::move(sha256);
    position_ = 0;
    line_number_ = 0;
    file_records_ = 0;
  }
}

IngestReadAhead::IngestReadAhead(IngestReader& reader) : reader_(reader), thread_([this] { Run(); }) {}

IngestReadAhead::~IngestReadAhead() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
}  // thread_ is joined here, before the members it uses go

void IngestReadAhead::Start(IngestStep* step) {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    requested_ = step;
  }
  changed_.notify_all();
}

Status IngestReadAhead::Wait() {
  if (!thread_.started()) {
    IngestStep* step = requested_;
    requested_ = nullptr;
    return StatusOfWork([&] { return reader_.Next(step); });
  }
  std::unique_lock<std::mutex> held(mutex_);
  changed_.wait(held, [this] { return requested_ == nullptr; });
  return status_;
}

void IngestReadAhead::Run() {
  std::unique_lock<std::mutex> held(mutex_);
  for (;;) {
    changed_.wait(held, [this] { return stopping_ || requested_ != nullptr; });
    if (stopping_) return;
    IngestStep* step = requested_;
    held.unlock();
    Status status = StatusOfWork([&] { return reader_.Next(step); });
    held.lock();
    status_ = std::move(status);
    requested_ = nullptr;  // read
    changed_.notify_all();
  }
}

}  // namespace deltasync
