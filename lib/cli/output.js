'use strict';

// Output helpers of the deltasync CLI: times, sizes, a one-line progress bar.

/** An epoch-milliseconds time as ISO 8601, or "never". */
function time(ms) {
  return typeof ms === 'number' ? new Date(ms).toISOString() : 'never';
}

/** A byte count for people: 512 B, 1.5 KiB, 3.2 MiB. */
function bytes(count) {
  if (count < 1024) return `${count} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = count / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** "1 file" / "2 files". */
function plural(count, word, many = `${word}s`) {
  return `${count} ${count === 1 ? word : many}`;
}

/**
 * The progress bar line for an 'ingest-progress' report:
 * "[########------------]  40%  4/10 files  1200 records  1.2 MiB".
 */
function progressLine({ filesDone, filesTotal, records, bytes: read }, width = 24) {
  const ratio = filesTotal > 0 ? Math.min(1, filesDone / filesTotal) : 1;
  const filled = Math.round(ratio * width);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const percent = `${Math.floor(ratio * 100)}%`.padStart(4);
  return `${bar} ${percent}  ${filesDone}/${filesTotal} files  ${plural(records, 'record')}  ${bytes(read)}`;
}

/**
 * A progress bar redrawn in place with \r on a terminal stream. Write nothing
 * else to the stream until done() is called.
 */
class ProgressBar {
  /** @param {NodeJS.WriteStream} stream */
  constructor(stream) {
    this.stream = stream;
    this.drawn = false;
  }

  update(report) {
    const columns = this.stream.columns || 80;
    this.stream.write(`\r${progressLine(report).slice(0, columns - 1)}\x1b[K`);
    this.drawn = true;
  }

  /** Ends the line (when anything was drawn). */
  done() {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }
}

module.exports = { time, bytes, plural, progressLine, ProgressBar };
