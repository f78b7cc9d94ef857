/* test_task_log.c - the master's append-only task record log (master/task_log.c) as the
 * store writer and a restarted master see it: the last put of a key wins and deletes
 * stick across a reopen, only synced records survive, a torn tail (garbage, a half or a
 * cut record, a bad CRC) is cut off without losing what came before or what comes after,
 * a file that is not a task log is refused and left alone, a crashed compaction's
 * leftover is ignored, compaction keeps every live record, refused input buffers nothing,
 * and the in-memory replay agrees with the file for every possible cut of an image. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/task_log.h"

#define FILE_HEADER 8
#define REC_HEADER 24
#define TEXT_MAX (16u << 20)            /* the longest text task_log_put takes (REC_MAX) */

struct ctx {
	char dir[64];
	char path[128], new_path[128];
	struct task_log *l;
};

static void open_log(struct ctx *c)
{
	char err[256];

	err[0] = '\0';
	assert_int_equal(task_log_open(c->dir, &c->l, err, sizeof(err)), 0);
	assert_non_null(c->l);
}

static void close_log(struct ctx *c)
{
	task_log_close(c->l);
	c->l = NULL;
}

static void reopen(struct ctx *c)
{
	close_log(c);
	open_log(c);
}

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return -1;
	log_init("test_task_log", LOG_LVL_ERROR + 1);     /* torn tails warn by design */
	snprintf(c->dir, sizeof(c->dir), "/tmp/pacer-tasklog-XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	snprintf(c->path, sizeof(c->path), "%s/tasks.log", c->dir);
	snprintf(c->new_path, sizeof(c->new_path), "%s/tasks.log.new", c->dir);
	open_log(c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	close_log(c);
	remove_tree(c->dir);
	free(c);
	return 0;
}

/* ---- helpers ---- */

/* A scan's records as text, "key=text\n" each (or "key=text|update\n" for a key with an
 * update), in the order they came. */
struct dump { char *p; size_t len, cap; uint64_t last_key; bool ordered; };

static int dump_one(uint64_t key, const char *text, size_t len, const char *update,
		    size_t update_len, void *arg)
{
	struct dump *d = arg;
	char head[32];
	int n = snprintf(head, sizeof(head), "%" PRIu64 "=", key);

	if (key <= d->last_key)
		d->ordered = false;
	d->last_key = key;
	while (d->len + (size_t)n + len + update_len + 3 > d->cap) {
		d->cap = d->cap ? d->cap * 2 : 256;
		d->p = realloc(d->p, d->cap);
		assert_non_null(d->p);
	}
	memcpy(d->p + d->len, head, (size_t)n);
	memcpy(d->p + d->len + n, text, len);
	d->len += (size_t)n + len;
	if (update) {
		d->p[d->len++] = '|';
		memcpy(d->p + d->len, update, update_len);
		d->len += update_len;
	}
	d->p[d->len++] = '\n';
	d->p[d->len] = '\0';
	return 0;
}

/* The live records of the log (caller frees); fails the test if they are not in key order. */
static char *scan_all(struct task_log *l)
{
	struct dump d = { .ordered = true };

	assert_int_equal(task_log_scan(l, dump_one, &d), 0);
	assert_true(d.ordered);
	return d.p ? d.p : strdup("");
}

static void assert_log(struct ctx *c, const char *want)
{
	char *got = scan_all(c->l);

	assert_string_equal(got, want);
	free(got);
}

/* Replays an image in memory; returns its records as scan_all does and the valid length. */
static char *replay_all(const char *data, size_t len, size_t *whole)
{
	struct dump d = { .ordered = true };
	int rc = -1;

	*whole = task_log_replay_buf(data, len, dump_one, &d, &rc);
	assert_int_equal(rc, 0);
	assert_true(d.ordered);
	return d.p ? d.p : strdup("");
}

static void put(struct ctx *c, uint64_t key, const char *text)
{
	assert_int_equal(task_log_put(c->l, key, text, strlen(text)), 0);
}

static void update(struct ctx *c, uint64_t key, const char *text)
{
	assert_int_equal(task_log_update(c->l, key, text, strlen(text)), 0);
}

static void del(struct ctx *c, uint64_t key)
{
	assert_int_equal(task_log_del(c->l, key), 0);
}

static void sync_log(struct ctx *c)
{
	assert_int_equal(task_log_sync(c->l), 0);
}

static struct task_log_stats stats_of(struct ctx *c)
{
	struct task_log_stats s;

	task_log_stats(c->l, &s);
	return s;
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void append_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void write_whole(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* A record in the format task_log.h documents, written independently of task_log.c:
 * magic "PTLR", payload length, CRC-32 over type, 3 spare bytes and key, then payload. */
static size_t encode_record(unsigned char *out, char type, uint64_t key, const char *text)
{
	uint32_t len = text ? (uint32_t)strlen(text) : 0, crc;

	memcpy(out, "PTLR", 4);
	for (int i = 0; i < 4; i++)
		out[4 + i] = (unsigned char)(len >> (8 * i));
	out[12] = (unsigned char)type;
	out[13] = out[14] = out[15] = 0;
	for (int i = 0; i < 8; i++)
		out[16 + i] = (unsigned char)(key >> (8 * i));
	if (len)
		memcpy(out + REC_HEADER, text, len);
	crc = (uint32_t)crc32(crc32(0, out + 12, 12), out + REC_HEADER, len);
	for (int i = 0; i < 4; i++)
		out[8 + i] = (unsigned char)(crc >> (8 * i));
	return REC_HEADER + len;
}

/* ---- tests ---- */

/* The last put of a key wins, deletes stick, keys come back in key order, and the stats
 * add up to what is in the file, before and after a reopen. */
static void test_put_delete_reopen(void **state)
{
	struct ctx *c = *state;
	const char *want = "3=c\n7=seven-2\n10=ten\n";
	struct task_log_stats s;

	put(c, 10, "ten");
	put(c, 7, "seven-1");
	put(c, 2, "two");
	put(c, 7, "seven-2");
	put(c, 3, "c");
	del(c, 2);
	del(c, 99);                     /* a key the log never had */
	put(c, 5, "five");
	del(c, 5);
	sync_log(c);
	assert_log(c, want);

	s = stats_of(c);
	assert_int_equal(s.live, 3);
	assert_int_equal(s.live_bytes, 3 * REC_HEADER + strlen("c") + strlen("seven-2") + strlen("ten"));
	assert_int_equal(s.records, 9);
	assert_int_equal(s.file_bytes, FILE_HEADER + 9 * REC_HEADER + strlen("ten") +
			 strlen("seven-1") + strlen("two") + strlen("seven-2") + strlen("c") +
			 strlen("five"));
	assert_int_equal(s.file_bytes, file_size(c->path));
	assert_int_equal(s.torn_bytes, 0);
	assert_int_equal(s.compactions, 0);

	reopen(c);
	assert_log(c, want);
	s = stats_of(c);
	assert_int_equal(s.live, 3);
	assert_int_equal(s.live_bytes, 3 * REC_HEADER + strlen("c") + strlen("seven-2") + strlen("ten"));
	assert_int_equal(s.records, 9);
	assert_int_equal(s.file_bytes, file_size(c->path));
	assert_int_equal(s.torn_bytes, 0);

	/* An empty log: a header only, and it stays one across a reopen. */
	del(c, 3);
	del(c, 7);
	del(c, 10);
	sync_log(c);
	assert_log(c, "");
	assert_int_equal(stats_of(c).live, 0);
	assert_int_equal(stats_of(c).live_bytes, 0);
	reopen(c);
	assert_log(c, "");
}

/* A delete record is a whole, valid record on replay: a reopen neither brings the key
 * back nor cuts the delete and every record after it off as a torn tail. */
static void test_delete_survives_reopen(void **state)
{
	struct ctx *c = *state;
	off_t size;

	put(c, 1, "one");
	put(c, 2, "two");
	sync_log(c);
	del(c, 1);
	sync_log(c);
	put(c, 3, "three");
	sync_log(c);
	size = file_size(c->path);

	reopen(c);
	assert_int_equal(stats_of(c).torn_bytes, 0);
	assert_int_equal(stats_of(c).records, 4);
	assert_int_equal(file_size(c->path), size);
	assert_log(c, "2=two\n3=three\n");
}

/* Updates: each key keeps its put and only its last update (a shorter update than the one
 * before does not upset the byte count); a put drops the update; an update of a key
 * without a put, or after its delete, is ignored; all of it the same after a reopen. */
static void test_updates(void **state)
{
	struct ctx *c = *state;
	const char *want = "1=one|{\"s\":3}\n2=two\n4=four|{\"s\":1}\n";
	struct task_log_stats s;

	put(c, 1, "one");
	put(c, 2, "two-0");
	put(c, 3, "three");
	put(c, 4, "four");
	sync_log(c);
	update(c, 1, "{\"s\":1,\"long\":\"xxxxxxxxxxxx\"}");
	update(c, 2, "{\"s\":1}");
	update(c, 3, "{\"s\":1}");
	sync_log(c);
	update(c, 1, "{\"s\":2}");
	update(c, 1, "{\"s\":3}");         /* shorter than the first: the count must not wrap */
	put(c, 2, "two");                    /* a new put drops the update */
	del(c, 3);
	update(c, 3, "{\"s\":2}");         /* after its delete: ignored */
	update(c, 9, "{\"s\":1}");         /* never put: ignored */
	update(c, 4, "{\"s\":1}");
	sync_log(c);
	assert_log(c, want);
	s = stats_of(c);
	assert_int_equal(s.live, 3);
	assert_int_equal(s.live_bytes, 5 * REC_HEADER + strlen("one") + strlen("{\"s\":3}") +
			 strlen("two") + strlen("four") + strlen("{\"s\":1}"));
	assert_int_equal(s.file_bytes, file_size(c->path));

	reopen(c);
	assert_log(c, want);
	assert_int_equal(stats_of(c).live_bytes, s.live_bytes);
	assert_int_equal(stats_of(c).torn_bytes, 0);
}

/* A compaction keeps each key's put and last update, in that order, and drops the rest. */
static void test_updates_survive_compaction(void **state)
{
	struct ctx *c = *state;
	const char *want = "1=one|{\"s\":9}\n2=two\n";
	struct task_log_stats s;

	put(c, 1, "one");
	put(c, 2, "two");
	sync_log(c);
	for (int i = 0; i <= 9; i++) {
		char u[32];

		snprintf(u, sizeof(u), "{\"s\":%d}", i);
		update(c, 1, u);
		sync_log(c);
	}
	assert_int_equal(task_log_compact(c->l), 0);
	s = stats_of(c);
	assert_int_equal(s.file_bytes, FILE_HEADER + s.live_bytes);
	assert_int_equal(file_size(c->path), s.file_bytes);
	assert_log(c, want);
	update(c, 2, "{\"s\":1}");
	sync_log(c);
	reopen(c);
	assert_log(c, "1=one|{\"s\":9}\n2=two|{\"s\":1}\n");
	assert_int_equal(stats_of(c).records, 4);       /* two puts, two updates */
}

/* A put that replaces a longer record: the live bytes shrink by the difference (they do
 * not wrap around), so the stats stay true and no compaction runs for a log that is all
 * live but one dead record. */
static void test_shorter_record_replaces_longer(void **state)
{
	struct ctx *c = *state;
	char long_text[201];
	struct task_log_stats s;

	memset(long_text, 'x', 200);
	long_text[200] = '\0';
	put(c, 1, long_text);
	put(c, 2, "other");
	sync_log(c);
	put(c, 1, "short");
	sync_log(c);

	s = stats_of(c);
	assert_int_equal(s.live_bytes, 2 * REC_HEADER + 5 + 5);
	assert_int_equal(s.file_bytes, FILE_HEADER + 3 * REC_HEADER + 200 + 5 + 5);
	assert_int_equal(s.file_bytes, file_size(c->path));
	assert_int_equal(s.compactions, 0);
	assert_log(c, "1=short\n2=other\n");

	reopen(c);
	s = stats_of(c);
	assert_int_equal(s.live_bytes, 2 * REC_HEADER + 5 + 5);
	assert_int_equal(s.file_bytes, file_size(c->path));
	assert_log(c, "1=short\n2=other\n");

	/* The next sync of a log that is mostly live does not rewrite it either. */
	put(c, 3, "three");
	sync_log(c);
	s = stats_of(c);
	assert_int_equal(s.compactions, 0);
	assert_int_equal(s.live_bytes, 3 * REC_HEADER + 15);
	assert_int_equal(s.file_bytes, FILE_HEADER + 4 * REC_HEADER + 215);
}

/* Records put or deleted after the last sync were never acknowledged: a close (or a
 * crash) drops them and nothing of them is in the file. */
static void test_unsynced_records_are_dropped(void **state)
{
	struct ctx *c = *state;
	off_t synced;

	put(c, 1, "one");
	put(c, 2, "two");
	sync_log(c);
	synced = file_size(c->path);

	put(c, 3, "three");
	put(c, 1, "one-changed");
	del(c, 2);
	close_log(c);
	assert_int_equal(file_size(c->path), synced);

	open_log(c);
	assert_log(c, "1=one\n2=two\n");
	assert_int_equal(stats_of(c).records, 2);
	assert_int_equal(stats_of(c).torn_bytes, 0);
}

/* The ways a tail can be torn, each done with plain file I/O after a sync of three records. */
enum damage { GARBAGE, HALF_RECORD, CUT_IN_HEADER, CUT_IN_PAYLOAD, BAD_CRC, BAD_MAGIC };

static void torn_tail(struct ctx *c, enum damage how)
{
	static const char garbage[] = "\0\0\0\0 not a record: a torn write's garbage";
	const char *all3 = "1=first\n2=second\n3=third record\n";
	unsigned char rec[256], b;
	off_t before3, full, damaged, want_size, at;
	struct task_log_stats s;
	size_t n;
	int fd;

	put(c, 1, "first");
	put(c, 2, "second");
	sync_log(c);
	before3 = file_size(c->path);
	put(c, 3, "third record");
	sync_log(c);
	full = file_size(c->path);
	close_log(c);

	switch (how) {
	case GARBAGE:
		append_bytes(c->path, garbage, sizeof(garbage) - 1);
		want_size = full;
		break;
	case HALF_RECORD:
		n = encode_record(rec, 'P', 4, "a fourth record whose second half never landed");
		append_bytes(c->path, rec, n / 2);
		want_size = full;
		break;
	case CUT_IN_HEADER:
		assert_int_equal(truncate(c->path, before3 + 10), 0);
		want_size = before3;
		break;
	case CUT_IN_PAYLOAD:
		assert_int_equal(truncate(c->path, full - 3), 0);
		want_size = before3;
		break;
	case BAD_CRC:
	case BAD_MAGIC:
		at = how == BAD_CRC ? full - 2 : before3 + 1;   /* payload / magic of record 3 */
		fd = open(c->path, O_RDWR);
		assert_true(fd >= 0);
		assert_int_equal(pread(fd, &b, 1, at), 1);
		b ^= 0x20;
		assert_int_equal(pwrite(fd, &b, 1, at), 1);
		close(fd);
		want_size = before3;
		break;
	}
	damaged = file_size(c->path);

	open_log(c);
	s = stats_of(c);
	assert_true(s.torn_bytes > 0);
	assert_int_equal(s.torn_bytes, damaged - want_size);
	assert_int_equal(s.file_bytes, want_size);
	assert_int_equal(file_size(c->path), want_size);          /* cut back on disk */
	assert_log(c, want_size == full ? all3 : "1=first\n2=second\n");

	/* Nothing is lost after the cut: what is written next follows the last good record. */
	put(c, 4, "after the cut");
	put(c, 1, "first again");
	sync_log(c);
	reopen(c);
	s = stats_of(c);
	assert_int_equal(s.torn_bytes, 0);
	assert_int_equal(s.file_bytes, file_size(c->path));
	assert_log(c, want_size == full ?
		   "1=first again\n2=second\n3=third record\n4=after the cut\n" :
		   "1=first again\n2=second\n4=after the cut\n");
}

static void test_torn_tail_garbage(void **state) { torn_tail(*state, GARBAGE); }
static void test_torn_tail_half_record(void **state) { torn_tail(*state, HALF_RECORD); }
static void test_torn_tail_cut_in_header(void **state) { torn_tail(*state, CUT_IN_HEADER); }
static void test_torn_tail_cut_in_payload(void **state) { torn_tail(*state, CUT_IN_PAYLOAD); }
static void test_torn_tail_bad_crc(void **state) { torn_tail(*state, BAD_CRC); }
static void test_torn_tail_bad_magic(void **state) { torn_tail(*state, BAD_MAGIC); }

/* A record in the documented format, appended by another writer (a tool), is read; the
 * file header alone (a log cut right after it) is an empty log, not a torn one. */
static void test_documented_format_is_read(void **state)
{
	struct ctx *c = *state;
	unsigned char rec[128];
	size_t n;

	put(c, 1, "one");
	sync_log(c);
	close_log(c);
	n = encode_record(rec, 'P', 2, "{\"id\":\"two\"}");
	append_bytes(c->path, rec, n);
	n = encode_record(rec, 'D', 1, NULL);
	append_bytes(c->path, rec, n);
	open_log(c);
	assert_int_equal(stats_of(c).torn_bytes, 0);
	assert_int_equal(stats_of(c).records, 3);
	assert_log(c, "2={\"id\":\"two\"}\n");

	close_log(c);
	assert_int_equal(truncate(c->path, FILE_HEADER), 0);
	open_log(c);
	assert_int_equal(stats_of(c).torn_bytes, 0);
	assert_int_equal(file_size(c->path), FILE_HEADER);
	assert_log(c, "");
}

/* A file named tasks.log that is not a task log is refused with a message naming it and
 * is left exactly as it was. */
static void not_a_task_log(struct ctx *c, const char *content, size_t len)
{
	char err[256] = "", *after;
	struct task_log *l = (struct task_log *)err;      /* any non-NULL: open resets it */
	size_t after_len;

	close_log(c);
	write_whole(c->path, content, len);
	assert_true(task_log_open(c->dir, &l, err, sizeof(err)) < 0);
	assert_null(l);
	assert_non_null(strstr(err, c->path));
	after = read_file(c->path, &after_len);
	assert_non_null(after);
	assert_int_equal(after_len, len);
	assert_memory_equal(after, content, len);
	free(after);
}

static void test_not_a_task_log(void **state)
{
	static const char sqlite[] = "SQLite format 3\0\x10\0\x01\x01\0\x40\x20\x20";

	not_a_task_log(*state, sqlite, sizeof(sqlite) - 1);
}

static void test_other_version_is_not_a_task_log(void **state)
{
	static const char v2[] = "PACERTL2\0\0\0\0";

	not_a_task_log(*state, v2, sizeof(v2) - 1);
}

/* Shorter than a file header but not the start of one: not a torn header of a new log,
 * someone else's file; it is not overwritten. */
static void test_short_foreign_file_is_not_a_task_log(void **state)
{
	not_a_task_log(*state, "hello\n", 6);
}

/* A file cut before its header was synced (empty, or part of the header) is a new log. */
static void test_partial_header_is_a_new_log(void **state)
{
	struct ctx *c = *state;

	close_log(c);
	write_whole(c->path, "PACE", 4);
	open_log(c);
	assert_int_equal(file_size(c->path), FILE_HEADER);
	assert_log(c, "");
	put(c, 1, "one");
	sync_log(c);
	reopen(c);
	assert_log(c, "1=one\n");
}

/* A compaction that crashed before its rename left tasks.log.new: the old log stands, the
 * leftover is not read (not even a valid-looking one) and is removed. */
static void test_leftover_compaction_file_ignored(void **state)
{
	struct ctx *c = *state;
	unsigned char img[256];
	size_t n = FILE_HEADER;

	put(c, 1, "one");
	put(c, 2, "two");
	sync_log(c);
	close_log(c);

	memcpy(img, "PACERTL1", FILE_HEADER);
	n += encode_record(img + n, 'P', 42, "only in the leftover");
	n += encode_record(img + n, 'D', 1, NULL);
	write_whole(c->new_path, img, n);
	open_log(c);
	assert_false(exists(c->new_path));
	assert_log(c, "1=one\n2=two\n");

	close_log(c);
	write_whole(c->new_path, "half a compaction", 17);
	open_log(c);
	assert_false(exists(c->new_path));
	assert_log(c, "1=one\n2=two\n");
}

/* Compaction copies through a 1 MiB buffer: records bigger than it, and records that
 * straddle its end, come out whole and in order. */
static void test_compaction_with_big_records(void **state)
{
	struct ctx *c = *state;
	size_t big = (3u << 20) / 2;    /* 1.5 MiB */
	char *text = malloc(big + 1), *before, *after;

	assert_non_null(text);
	for (uint64_t k = 1; k <= 6; k++) {
		memset(text, 'a' + (int)k, big);
		text[big] = '\0';
		put(c, k, k % 2 ? text : "small");     /* 1, 3, 5 big; 2, 4, 6 small */
		update(c, k, "{\"s\":1}");
	}
	put(c, 2, "small, superseded");
	sync_log(c);
	put(c, 2, "small again");                    /* the first two puts of 2 are dead */
	del(c, 4);
	sync_log(c);
	before = scan_all(c->l);
	assert_int_equal(task_log_compact(c->l), 0);
	after = scan_all(c->l);
	assert_string_equal(after, before);
	free(after);
	assert_int_equal(stats_of(c).file_bytes, file_size(c->path));
	reopen(c);
	after = scan_all(c->l);
	assert_string_equal(after, before);
	assert_int_equal(stats_of(c).torn_bytes, 0);
	free(after);
	free(before);
	free(text);
}

/* A second opener of the same work dir (a second master) is refused while the first has
 * the log, with a message naming the file, and nothing of the first's is touched; once the
 * first closes, the log opens. */
static void test_second_opener_refused(void **state)
{
	struct ctx *c = *state;
	struct task_log *other = NULL;
	char err[256] = "";

	put(c, 1, "one");
	sync_log(c);
	write_whole(c->new_path, "a compaction of the first opener", 32);
	assert_int_equal(task_log_open(c->dir, &other, err, sizeof(err)), -EBUSY);
	assert_null(other);
	assert_non_null(strstr(err, c->path));
	assert_non_null(strstr(err, "in use"));
	assert_true(exists(c->new_path));       /* the second opener removed nothing */
	put(c, 2, "two");
	sync_log(c);
	assert_log(c, "1=one\n2=two\n");

	close_log(c);
	assert_int_equal(task_log_open(c->dir, &other, err, sizeof(err)), 0);
	c->l = other;
	assert_log(c, "1=one\n2=two\n");
}

/* Builds the text of key k's version v: ~100 bytes, different per version. */
static void text_of(char *out, size_t len, uint64_t k, int v)
{
	snprintf(out, len, "{\"task\":%" PRIu64 ",\"version\":%d,\"state\":\"TASK_%s\",\"pad\":\"%0*d\"}",
		 k, v, v % 2 ? "RUNNING" : "STAGING", 40 + (int)(k % 7), v);
}

/* Compaction drops superseded and deleted records: the file shrinks to its live records,
 * the scan does not change, a reopen reads the compacted file, and puts made after it
 * (and ones buffered across it) land and survive. */
static void test_compaction(void **state)
{
	struct ctx *c = *state;
	char text[160];
	char *before, *after;
	struct task_log_stats s;
	off_t big;

	for (int v = 0; v < 20; v++) {
		for (uint64_t k = 1; k <= 50; k++) {
			text_of(text, sizeof(text), k, v);
			put(c, k, text);
		}
		sync_log(c);
	}
	for (uint64_t k = 41; k <= 50; k++)
		del(c, k);
	sync_log(c);
	before = scan_all(c->l);
	big = file_size(c->path);
	s = stats_of(c);
	assert_int_equal(s.live, 40);
	assert_int_equal(s.compactions, 0);

	put(c, 60, "buffered across the compaction");
	assert_int_equal(task_log_compact(c->l), 0);
	s = stats_of(c);
	assert_int_equal(s.compactions, 1);
	assert_int_equal(s.live, 40);
	assert_int_equal(s.file_bytes, FILE_HEADER + s.live_bytes);
	assert_int_equal(file_size(c->path), s.file_bytes);
	assert_true(file_size(c->path) * 10 < big);
	assert_false(exists(c->new_path));
	after = scan_all(c->l);
	assert_string_equal(after, before);
	free(after);

	reopen(c);                      /* the buffered put was never synced: gone */
	after = scan_all(c->l);
	assert_string_equal(after, before);
	free(after);
	free(before);
	s = stats_of(c);
	assert_int_equal(s.records, 40);
	assert_int_equal(s.file_bytes, file_size(c->path));
	assert_int_equal(s.torn_bytes, 0);

	/* Puts and deletes after a compaction, and one buffered across another compaction. */
	put(c, 1, "one after");
	del(c, 2);
	put(c, 61, "sixty-one");
	sync_log(c);
	put(c, 62, "buffered across the second compaction");
	assert_int_equal(task_log_compact(c->l), 0);
	put(c, 3, "three after");
	sync_log(c);
	s = stats_of(c);
	assert_int_equal(s.live, 41);
	assert_int_equal(s.file_bytes, file_size(c->path));
	before = scan_all(c->l);
	reopen(c);
	after = scan_all(c->l);
	assert_string_equal(after, before);
	assert_int_equal(strncmp(after, "1=one after\n", 12), 0);
	assert_null(strstr(after, "\n2="));
	assert_non_null(strstr(after, "\n3=three after\n"));
	assert_non_null(strstr(after, "\n61=sixty-one\n"));
	assert_non_null(strstr(after, "\n62=buffered across the second compaction\n"));
	free(after);
	free(before);

	/* Everything deleted: compaction leaves the file header only. */
	for (uint64_t k = 1; k <= 62; k++)
		del(c, k);
	sync_log(c);
	assert_int_equal(task_log_compact(c->l), 0);
	assert_int_equal(file_size(c->path), FILE_HEADER);
	reopen(c);
	assert_log(c, "");
}

/* Key 0 and a text over the limit are refused and buffer nothing; the longest text that is
 * taken is also read back (the writer never makes a record the reader refuses). */
static void test_refused_input(void **state)
{
	struct ctx *c = *state;
	char *big = malloc(TEXT_MAX + 1);
	struct task_log_stats s;

	assert_non_null(big);
	memset(big, 'y', TEXT_MAX + 1);
	assert_int_equal(task_log_put(c->l, 0, "zero", 4), -EINVAL);
	assert_int_equal(task_log_del(c->l, 0), -EINVAL);
	assert_int_equal(task_log_put(c->l, 1, big, TEXT_MAX + 1), -EINVAL);
	sync_log(c);
	assert_int_equal(file_size(c->path), FILE_HEADER);
	assert_int_equal(stats_of(c).records, 0);

	assert_int_equal(task_log_put(c->l, 1, big, TEXT_MAX), 0);
	put(c, 2, "after the big one");
	sync_log(c);
	reopen(c);
	s = stats_of(c);
	assert_int_equal(s.torn_bytes, 0);
	assert_int_equal(s.live, 2);
	assert_int_equal(s.live_bytes, 2 * REC_HEADER + TEXT_MAX + strlen("after the big one"));
	free(big);
}

/* Many keys, deleted in a scattered order and partly re-put: the log agrees with a plain
 * array of what was written, before and after a reopen. */
static void test_many_keys(void **state)
{
	enum { N = 5000 };
	struct ctx *c = *state;
	static int version[N + 1];       /* 0: deleted / never put */
	uint32_t rnd = 12345;
	char text[160];
	struct dump want = { .ordered = true };
	char *got;

	memset(version, 0, sizeof(version));
	for (uint64_t k = 1; k <= N; k++) {
		text_of(text, sizeof(text), k, 1);
		put(c, k, text);
		version[k] = 1;
	}
	sync_log(c);
	for (int i = 0; i < 3 * N; i++) {
		uint64_t k;

		rnd = rnd * 1103515245u + 12345u;
		k = 1 + (rnd >> 8) % N;
		if ((rnd >> 4) % 3 == 0) {
			version[k]++;
			text_of(text, sizeof(text), k, version[k]);
			put(c, k, text);
		} else {
			del(c, k);
			version[k] = 0;
		}
		if (i % 1000 == 999)
			sync_log(c);
	}
	sync_log(c);
	for (uint64_t k = 1; k <= N; k++)
		if (version[k]) {
			text_of(text, sizeof(text), k, version[k]);
			dump_one(k, text, strlen(text), NULL, 0, &want);
		}
	assert_non_null(want.p);
	got = scan_all(c->l);
	assert_string_equal(got, want.p);
	free(got);
	reopen(c);
	got = scan_all(c->l);
	assert_string_equal(got, want.p);
	free(got);
	free(want.p);
}

/* A write that fails (the file cannot grow) is not durable and leaves no half record: the
 * file stays as it was, and the next sync writes the same records once there is room. */
static void test_failed_sync_leaves_no_half_record(void **state)
{
	struct ctx *c = *state;
	struct rlimit old, lim;
	char text[160];
	off_t size;

	put(c, 1, "one");
	sync_log(c);
	size = file_size(c->path);
	text_of(text, sizeof(text), 2, 1);
	put(c, 2, text);
	del(c, 1);

	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)size + 10;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_true(task_log_sync(c->l) < 0);
	assert_true(task_log_sync(c->l) < 0);                   /* still no room */
	assert_int_equal(file_size(c->path), size);
	assert_log(c, "1=one\n");
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_DFL);

	sync_log(c);
	reopen(c);
	assert_int_equal(stats_of(c).torn_bytes, 0);
	assert_int_equal(stats_of(c).records, 3);
	{
		char want[200];

		snprintf(want, sizeof(want), "2=%s\n", text);
		assert_log(c, want);
	}
}

static int stop_at_second(uint64_t key, const char *text, size_t len, const char *update,
			  size_t update_len, void *arg)
{
	(void)key;
	(void)text;
	(void)len;
	(void)update;
	(void)update_len;
	return ++*(int *)arg == 2 ? 7 : 0;
}

/* The in-memory replay of the file's image gives what a scan gives; for every cut of the
 * image it returns the end of the last whole record before the cut and the records the log
 * had when it ended there. */
static void test_replay_buf(void **state)
{
	enum { OPS = 12 };
	struct ctx *c = *state;
	size_t ends[OPS + 1], len, whole;
	char *at_end[OPS + 1], *img, *got;
	int calls = 0, rc = 0;

	ends[0] = FILE_HEADER;
	at_end[0] = strdup("");
	for (int i = 1; i <= OPS; i++) {
		uint64_t k = 1 + (uint64_t)(i * 7) % 5;

		if (i % 4 == 0) {
			del(c, k);
		} else {
			char text[32];

			snprintf(text, sizeof(text), "op %d key %" PRIu64, i, k);
			put(c, k, text);
		}
		sync_log(c);
		ends[i] = (size_t)stats_of(c).file_bytes;
		at_end[i] = scan_all(c->l);
	}
	close_log(c);
	img = read_file(c->path, &len);
	assert_non_null(img);
	assert_int_equal(len, ends[OPS]);

	got = replay_all(img, len, &whole);
	assert_int_equal(whole, len);
	assert_string_equal(got, at_end[OPS]);
	free(got);

	for (size_t cut = 0; cut <= len; cut++) {
		char *prefix = malloc(cut ? cut : 1);  /* exact size: ASan sees any read past it */
		int i = OPS;

		memcpy(prefix, img, cut);
		while (i > 0 && ends[i] > cut)
			i--;
		got = replay_all(prefix, cut, &whole);
		if (cut < FILE_HEADER) {
			assert_int_equal(whole, 0);
			assert_string_equal(got, "");
		} else {
			assert_int_equal(whole, ends[i]);
			assert_string_equal(got, at_end[i]);
		}
		free(got);
		free(prefix);
	}

	/* fn's non-zero return stops the walk and comes back in rc. */
	whole = task_log_replay_buf(img, len, stop_at_second, &calls, &rc);
	assert_int_equal(whole, len);
	assert_int_equal(rc, 7);
	assert_int_equal(calls, 2);

	/* A wrong file header: nothing, 0 bytes. */
	img[7] = '2';
	got = replay_all(img, len, &whole);
	assert_int_equal(whole, 0);
	assert_string_equal(got, "");
	free(got);

	free(img);
	for (int i = 0; i <= OPS; i++)
		free(at_end[i]);
	open_log(c);                    /* for teardown */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_delete_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_updates_survive_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shorter_record_replaces_longer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsynced_records_are_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_half_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_cut_in_header, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_cut_in_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_bad_crc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_bad_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_documented_format_is_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_task_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_version_is_not_a_task_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_foreign_file_is_not_a_task_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial_header_is_a_new_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leftover_compaction_file_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_opener_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction_with_big_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_sync_leaves_no_half_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_replay_buf, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
