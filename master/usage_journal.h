/* usage_journal.h - the usage journal: an append-only file in the master's work dir that
 * makes an applied usage batch durable with one write + fdatasync shared by every batch
 * waiting (group commit), instead of a SQLite row per reading. The in-memory state is
 * checkpointed into the store from time to time; the journal then starts over.
 *
 * Files: <dir>/usage.journal (being appended) and <dir>/usage.journal.old (the one before
 * the last rotation, deleted once the checkpoint that covers it is committed). A record is
 * one applied batch: a header (magic, payload length, CRC-32 of the payload) and the
 * payload (agent id, seq, each valid reading with its resolved wall time), in host byte
 * order (a crash-recovery file, read back by the same machine). Replay stops at the first
 * record that is short or fails its CRC (a torn tail: that batch was never acknowledged). */
#ifndef PACER_MASTER_USAGE_JOURNAL_H
#define PACER_MASTER_USAGE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include "master/usage_wire.h"

struct usage_journal;

/* A growable byte buffer the handlers encode records into. */
struct ujbuf {
	char *p;
	size_t len, cap;
};

/* Appends one record: the batch's header and its readings without bad_name (each read
 * with has_at set). -ENOMEM. */
int usage_journal_encode(struct ujbuf *b, const char *agent_id, uint64_t seq,
			 const struct usage_reading *const *readings, size_t n);

/* Opens (creating) <dir>/usage.journal for appending at its end. */
int usage_journal_open(const char *dir, struct usage_journal **out);
void usage_journal_close(struct usage_journal *j);
/* Appends len bytes and fdatasyncs. On failure the file is cut back to where it was, so
 * no half record is left before later ones; the caller retries with the same bytes. */
int usage_journal_append(struct usage_journal *j, const void *data, size_t len);
/* Bytes in the current file. */
size_t usage_journal_size(const struct usage_journal *j);
/* Renames the current file to usage.journal.old (replacing one left over) and starts an
 * empty one. On failure usage.journal.old must be kept (appends may still go to it). */
int usage_journal_rotate(struct usage_journal *j);
/* Deletes usage.journal.old (after the checkpoint covering it committed). */
int usage_journal_drop_old(struct usage_journal *j);

/* Calls fn for every whole record of usage.journal.old, then of usage.journal, in order
 * (b is valid during the call only). *records and *torn count what was read and the
 * files that ended in a torn record. fn's non-zero return stops the replay. */
int usage_journal_replay(const char *dir, int (*fn)(void *arg, const struct usage_batch *b),
			 void *arg, size_t *records, size_t *torn);

/* Replays the records of one buffer (what usage_journal_replay does for each file): returns
 * the bytes of whole records consumed (< len: a torn tail); *rc gets fn's non-zero return
 * (the replay stopped there) or -ENOMEM, else 0. */
size_t usage_journal_replay_buf(const char *data, size_t len,
				int (*fn)(void *arg, const struct usage_batch *b), void *arg,
				size_t *records, int *rc);

#endif
