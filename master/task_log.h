/* task_log.h - the master's task records in an append-only log (<work-dir>/tasks.log)
 * instead of a SQLite row per task: a placement wave writes each task twice (STAGING, then
 * RUNNING), and appending those records costs a fraction of updating a B-tree (no page
 * rewrites, no WAL checkpoints, no reads). The rest of the master's state stays in the
 * store (master/store.h).
 *
 * File: an 8-byte file header "PACERTL1", then records, each a 24-byte header (magic
 * "PTLR", payload length, CRC-32 of type+key+payload, type, key) and its payload, fields
 * little-endian. Types: 'P' puts the record's JSON text under a key, 'U' updates it (a
 * JSON object of the fields that changed since the put: a task's state, times, status
 * uuids, health; the reader lays it over the put's fields), 'D' deletes the key. Keys are
 * the master's task sequence numbers (never 0). A put replaces a key's record and drops
 * its update; an update replaces the key's previous update (so it must carry every field
 * that may have changed since the put); an update of a key without a put is ignored.
 *
 * Durability: puts and deletes are buffered until task_log_sync, which writes them and
 * fdatasyncs (one sync per store-writer batch). Replay stops at the first record that is
 * short, has a bad magic or fails its CRC: that is a torn tail (a batch whose sync never
 * returned, so nothing was acknowledged); the file is cut back there when opened.
 *
 * Compaction: when dead records (superseded or deleted) pass COMPACT_MIN_DEAD bytes and
 * twice the live ones, the live records (each key's put and last update) are copied to tasks.log.new, which is synced and
 * renamed over tasks.log (a crash at any step leaves one whole, valid log).
 *
 * One thread at a time (the store writer, or the loader before it starts). */
#ifndef PACER_MASTER_TASK_LOG_H
#define PACER_MASTER_TASK_LOG_H

#include <stddef.h>
#include <stdint.h>

struct task_log;

/* What a replay saw: records read, live keys at the end, bytes cut off as a torn tail. */
struct task_log_stats {
	size_t records, live;
	uint64_t file_bytes, live_bytes, torn_bytes;
	size_t compactions;
};

/* Opens (creating) <dir>/tasks.log, locks it (flock: -EBUSY while another process has it
 * open here), replays it into its index and cuts a torn tail off. err gets a message naming
 * the file on failure (-errno). */
int task_log_open(const char *dir, struct task_log **out, char *err, size_t errlen);
/* Closes (pending buffered records are dropped: sync first). NULL is fine. */
void task_log_close(struct task_log *l);

/* What a scan calls for each live key: its put's JSON text and its last update's (NULL,
 * 0 if none), neither NUL-terminated, valid during the call. */
typedef int (*task_log_fn)(uint64_t key, const char *text, size_t len, const char *update,
			   size_t update_len, void *arg);

/* Calls fn for every live key in key order. fn's non-zero return stops the scan and is
 * returned. -ENOMEM, -EIO. */
int task_log_scan(struct task_log *l, task_log_fn fn, void *arg);

/* Buffers a put of text under key (key > 0). -EINVAL (key 0, text too long), -ENOMEM. */
int task_log_put(struct task_log *l, uint64_t key, const char *text, size_t len);
/* Buffers an update of key's record (see above). -EINVAL (key 0, text too long), -ENOMEM. */
int task_log_update(struct task_log *l, uint64_t key, const char *text, size_t len);
/* Buffers a delete of key (a key not in the log is fine). -EINVAL, -ENOMEM. */
int task_log_del(struct task_log *l, uint64_t key);
/* Writes what is buffered and fdatasyncs; compacts when due. On a write error the file is
 * cut back to where it was (no half record before later ones) and the buffer is kept for
 * the next call. 0 or -errno. */
int task_log_sync(struct task_log *l);
/* Compacts now (also what task_log_sync does when due). 0 or -errno (the old log stays). */
int task_log_compact(struct task_log *l);

void task_log_stats(const struct task_log *l, struct task_log_stats *out);

/* Replays a log image in memory, as task_log_open does with the file: calls fn for every
 * live record in key order (text valid during the call). Returns the bytes of whole valid
 * records (less than len: a torn tail, or a missing or wrong file header, which gives 0);
 * *rc gets fn's non-zero return or -ENOMEM, else 0. For tests, the fuzzer and tools. */
size_t task_log_replay_buf(const char *data, size_t len, task_log_fn fn, void *arg, int *rc);

#endif
