// IngestReader: the reading half of an ingestion. It decides from the manifest which files
// need reading, reads and hashes them, and parses their lines into chunks of validated,
// canonical records, one step at a time. It touches no database, so the ingester runs it on a
// thread of its own one step ahead of the writing (core/ingest.h).
//
// Thread safety: one thread at a time calls Next(); the steps it fills belong to the caller.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/ingest.h"
#include "core/joining_thread.h"
#include "core/json.h"
#include "core/status.h"
#include "simdjson.h"

namespace deltasync {

struct IngestFile {
  std::string relative;  // '/'-separated, from the ingested directory
  std::filesystem::path absolute;
  int64_t size = 0;
  int64_t mtime_ms = 0;  // as taken before the file is read
};

struct ManifestRow {
  int64_t size = 0;
  int64_t mtime_ms = 0;
  std::string sha256;
};
using Manifest = std::unordered_map<std::string, ManifestRow>;  // by relative path

// Records of one chunk of a file, ready to write. Reused from chunk to chunk, so that steady
// state allocates nothing: `records` keeps its strings, and only the first `count` belong to
// the chunk.
struct RecordChunk {
  struct Record {
    std::string entity_id;
    std::string canonical;
  };
  std::vector<Record> records;
  size_t count = 0;
  std::vector<IngestError> errors;  // the chunk's lines that are no record, in line order
  bool reaches_end = false;         // the file's last line is in this chunk

  Record& Add();
};

// One write for the ingester, and what reading up to it counted.
struct IngestStep {
  enum class Write {
    kNothing,   // only counts: files skipped or unreadable, one read in a dry run, or the end
    kManifest,  // a file that needs no record written (empty, or touched but not changed)
    kRecords,   // a chunk of records; on the file's last chunk, its manifest row too
  };
  Write write = Write::kNothing;
  const IngestFile* file = nullptr;
  std::string sha256;        // of the file, for its manifest row
  RecordChunk chunk;         // kRecords
  int64_t file_records = 0;  // kRecords: the file's records up to and including this chunk
  // Counted while reading up to this step: files_*, bytes_read and the errors of unreadable
  // files (the chunk's line errors are in `chunk`).
  IngestReport counted;
  int64_t files_done = 0;  // files this step finishes
};

class IngestReader {
 public:
  // REQUIRES: `files` (in the order to ingest) and `options` outlive the reader.
  IngestReader(const std::vector<IngestFile>& files, Manifest manifest, const IngestOptions& options,
               JsonLimits limits);

  // Fills *step with the next write, or with kNothing after a file read for nothing to write
  // (a dry run), counting every file before it that was not read. After the last step, done()
  // is true, and a further step only counts (write kNothing).
  Status Next(IngestStep* step);
  bool done() const { return !in_file_ && next_file_ == files_.size(); }

 private:
  const std::vector<IngestFile>& files_;
  const Manifest manifest_;
  const IngestOptions& options_;
  const JsonLimits limits_;
  const bool use_manifest_;
  simdjson::ondemand::parser parser_;
  size_t next_file_ = 0;
  int64_t files_read_ = 0;  // new or updated files so far, for max_files
  // The file whose records are being read.
  bool in_file_ = false;
  const IngestFile* file_ = nullptr;
  std::string content_;
  std::string sha256_;
  size_t position_ = 0;
  int64_t line_number_ = 0;
  int64_t file_records_ = 0;
};

// Runs an IngestReader's Next() one step ahead of its caller, on one thread of its own for the
// whole run. When no thread can be started, Wait() reads the step itself.
//
// Thread safety: one owner thread calls Start() and Wait(), alternately.
class IngestReadAhead {
 public:
  explicit IngestReadAhead(IngestReader& reader);
  ~IngestReadAhead();  // waits for the step being read, if any, then stops the thread
  IngestReadAhead(const IngestReadAhead&) = delete;
  IngestReadAhead& operator=(const IngestReadAhead&) = delete;

  // Starts reading the next step into *step. REQUIRES: the step started before was waited for.
  void Start(IngestStep* step);
  // Waits for the step Start() began and returns how its reading went.
  Status Wait();

 private:
  void Run();

  IngestReader& reader_;
  std::mutex mutex_;
  std::condition_variable changed_;
  IngestStep* requested_ = nullptr;  // guarded by mutex_: the step to read, null once it is read
  Status status_;                    // guarded by mutex_: how the last step's reading went
  bool stopping_ = false;            // guarded by mutex_
  JoiningThread thread_;             // last: started once the rest is set up, joined first
};

}  // namespace deltasync
