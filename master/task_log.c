/* task_log.c - the append-only task record log of task_log.h: a buffer of encoded records
 * written with one pwrite + fdatasync per sync, an index from key to its live record's
 * offset and size (open addressing on the 64-bit key), replay on open, compaction into a
 * new file renamed over the old one. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include "lib/byte_order.h"
#include "lib/log.h"
#include "lib/util.h"
#include "master/task_log.h"

#define FILE_MAGIC "PACERTL1"
#define FILE_HEADER 8
#define REC_MAGIC 0x524c5450u           /* "PTLR" little-endian */
#define REC_HEADER 24                   /* magic, length, crc, type, 3 spare, key */
#define REC_MAX (16u << 20)             /* a task record is ~1 KiB; refuse absurd lengths */
#define COMPACT_MIN_DEAD (64ull << 20)

/* Where a key's live records are: its put and its last update (upd_size 0: none). */
struct slot {
	uint64_t key;                   /* 0: empty */
	uint64_t off, upd_off;          /* of the record headers */
	uint32_t size, upd_size;        /* header + payload */
};

struct index {
	struct slot *slots;
	size_t mask, count;
};

struct task_log {
	int fd;
	char path[PATH_MAX], new_path[PATH_MAX], dir[PATH_MAX];
	uint64_t size;                  /* synced bytes in the file */
	uint64_t live_bytes;
	struct index idx;
	unsigned char *buf;             /* encoded, not yet written (their index changes are
					 * applied from their headers once they are durable) */
	size_t buf_len, buf_cap;
	struct task_log_stats stats;
};

/* ---- index ---- */

static size_t home(const struct index *x, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ULL) >> 20) & x->mask;
}

static int index_init(struct index *x, size_t n)
{
	x->slots = calloc_written(n, sizeof(*x->slots));    /* probed before written */
	x->mask = n - 1;
	x->count = 0;
	return x->slots ? 0 : -ENOMEM;
}

static size_t index_find(const struct index *x, uint64_t key)
{
	size_t i = home(x, key);

	while (x->slots[i].key && x->slots[i].key != key)
		i = (i + 1) & x->mask;
	return i;
}

static int index_grow(struct index *x)
{
	struct index bigger;

	if (index_init(&bigger, (x->mask + 1) * 2) < 0)
		return -ENOMEM;
	for (size_t i = 0; i <= x->mask; i++)
		if (x->slots[i].key)
			bigger.slots[index_find(&bigger, x->slots[i].key)] = x->slots[i];
	bigger.count = x->count;
	free(x->slots);
	*x = bigger;
	return 0;
}

/* Empties slot i, pulling later entries of its probe run back (no tombstones). */
static void index_del_at(struct index *x, size_t i)
{
	size_t j = i;

	for (;;) {
		j = (j + 1) & x->mask;
		if (!x->slots[j].key)
			break;
		size_t h = home(x, x->slots[j].key);

		if (((j - h) & x->mask) >= ((j - i) & x->mask)) {
			x->slots[i] = x->slots[j];
			i = j;
		}
	}
	x->slots[i] = (struct slot){ 0 };
	x->count--;
}

/* Applies one durable record (type, key, size at off) to x; *live counts the bytes of
 * live records. -ENOMEM (the table could not grow; nothing changed). */
static int index_apply(struct index *x, char type, uint64_t key, uint64_t off, uint32_t size,
		       uint64_t *live)
{
	size_t i = index_find(x, key);
	struct slot *s = &x->slots[i];

	if (type == 'U') {
		if (!s->key)
			return 0;               /* an update without a put: nothing to lay it on */
		*live += size;                  /* (64-bit: a shorter update must not wrap) */
		*live -= s->upd_size;
		s->upd_off = off;
		s->upd_size = size;
		return 0;
	}
	if (s->key) {                   /* a delete, or a put replacing put and update */
		*live -= s->size + s->upd_size;
		if (type == 'D')
			index_del_at(x, i);
	}
	if (type == 'D')
		return 0;
	if (!s->key) {                  /* a put of a new key */
		if ((x->count + 1) * 2 > x->mask + 1) {
			if (index_grow(x) < 0)
				return -ENOMEM;
			s = &x->slots[index_find(x, key)];
		}
		x->count++;
	}
	*s = (struct slot){ .key = key, .off = off, .size = size };
	*live += size;
	return 0;
}

/* ---- record encoding ---- */

static uint32_t rec_crc(const unsigned char *hdr, const char *payload, uint32_t len)
{
	uLong crc = crc32(0, hdr + 12, REC_HEADER - 12);         /* type, spare, key */

	/* (crc32 with a NULL buffer returns its initial value, not crc: skip it) */
	return (uint32_t)(len ? crc32(crc, (const Bytef *)payload, len) : crc);
}

static void rec_header(unsigned char *h, char type, uint64_t key, const char *payload,
		       uint32_t len)
{
	le32_store(h, REC_MAGIC);
	le32_store(h + 4, len);
	h[12] = (unsigned char)type;
	h[13] = h[14] = h[15] = 0;
	le64_store(h + 16, key);
	le32_store(h + 8, rec_crc(h, payload, len));
}

/* The record at data[off..len): its type, key, payload; false if it is not whole and valid. */
static bool rec_read(const char *data, size_t len, size_t off, char *type, uint64_t *key,
		     const char **payload, uint32_t *plen)
{
	const unsigned char *h = (const unsigned char *)data + off;

	if (len - off < REC_HEADER || le32_load(h) != REC_MAGIC)
		return false;
	*plen = le32_load(h + 4);
	if (*plen > REC_MAX || len - off - REC_HEADER < *plen)
		return false;
	*type = (char)h[12];
	*key = le64_load(h + 16);
	*payload = data + off + REC_HEADER;
	if (le32_load(h + 8) != rec_crc(h, *payload, *plen))
		return false;
	if (!*key || (*type == 'D' ? *plen != 0 : *type != 'P' && *type != 'U'))
		return false;
	return true;
}

/* ---- replay ---- */

/* Reads every whole record of data into x (key -> last put's offset), stopping at the
 * first bad one; returns the bytes of whole records (the file header included). */
static size_t replay_index(const char *data, size_t len, struct index *x, uint64_t *live,
			   size_t *records, int *rc)
{
	size_t off = FILE_HEADER;

	*rc = 0;
	*live = 0;
	*records = 0;
	if (len < FILE_HEADER || memcmp(data, FILE_MAGIC, FILE_HEADER) != 0)
		return 0;
	while (off < len) {
		const char *payload;
		uint32_t plen;
		uint64_t key;
		char type;

		if (!rec_read(data, len, off, &type, &key, &payload, &plen))
			break;
		if (index_apply(x, type, key, off, REC_HEADER + plen, live) < 0) {
			*rc = -ENOMEM;
			break;
		}
		off += REC_HEADER + plen;
		(*records)++;
	}
	return off;
}

static int cmp_slot_key(const void *a, const void *b)
{
	uint64_t x = ((const struct slot *)a)->key, y = ((const struct slot *)b)->key;

	return x < y ? -1 : x > y;
}

static int cmp_slot_off(const void *a, const void *b)
{
	uint64_t x = ((const struct slot *)a)->off, y = ((const struct slot *)b)->off;

	return x < y ? -1 : x > y;
}

/* A copy of x's used slots (x->count of them) sorted by cmp; NULL without memory. */
static struct slot *sorted_slots(const struct index *x, int (*cmp)(const void *, const void *))
{
	struct slot *live = malloc((x->count ? x->count : 1) * sizeof(*live));
	size_t n = 0;

	if (!live)
		return NULL;
	for (size_t i = 0; i <= x->mask; i++)
		if (x->slots[i].key)
			live[n++] = x->slots[i];
	qsort(live, n, sizeof(*live), cmp);
	return live;
}

/* Calls fn for x's live records of data in key order. */
static int scan_index(const struct index *x, const char *data, task_log_fn fn, void *arg)
{
	struct slot *live = sorted_slots(x, cmp_slot_key);
	size_t n = x->count;
	int rc = 0;

	if (!live)
		return -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct slot *s = &live[i];

		rc = fn(s->key, data + s->off + REC_HEADER, s->size - REC_HEADER,
			s->upd_size ? data + s->upd_off + REC_HEADER : NULL,
			s->upd_size ? s->upd_size - REC_HEADER : 0, arg);
	}
	free(live);
	return rc;
}

size_t task_log_replay_buf(const char *data, size_t len, task_log_fn fn, void *arg, int *rc)
{
	struct index x;
	uint64_t live;
	size_t records, whole;

	if (index_init(&x, 16) < 0) {
		*rc = -ENOMEM;
		return 0;
	}
	whole = replay_index(data, len, &x, &live, &records, rc);
	if (!*rc && fn)
		*rc = scan_index(&x, data, fn, arg);
	free(x.slots);
	return whole;
}

/* ---- the file ---- */

/* Maps the file's first len bytes read-only (NULL for an empty file). */
static int map_file(int fd, size_t len, char **out)
{
	*out = NULL;
	if (!len)
		return 0;
	*out = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (*out == MAP_FAILED) {
		*out = NULL;
		return -errno;
	}
	return 0;
}

/* Replays the open file into l->idx; a file without a header (new, or cut before one was
 * synced) gets one. Cuts a torn tail off. */
static int load(struct task_log *l, char *err, size_t errlen)
{
	struct stat st;
	char *data;
	size_t whole;
	int rc;

	if (fstat(l->fd, &st) < 0)
		return -errno;
	rc = map_file(l->fd, (size_t)st.st_size, &data);
	if (rc < 0) {
		snprintf(err, errlen, "cannot map %s: %s", l->path, strerror(-rc));
		return rc;
	}
	/* Shorter than a header: a new log's header cut by a crash starts like one; anything
	 * else is someone else's file, not to be overwritten. */
	if (st.st_size && memcmp(data, FILE_MAGIC, st.st_size < FILE_HEADER ?
				 (size_t)st.st_size : FILE_HEADER) != 0) {
		snprintf(err, errlen, "%s is not a task log (bad file header)", l->path);
		munmap(data, (size_t)st.st_size);
		return -EINVAL;
	}
	whole = replay_index(data, (size_t)st.st_size, &l->idx, &l->live_bytes,
			     &l->stats.records, &rc);
	if (data)
		munmap(data, (size_t)st.st_size);
	if (rc < 0) {
		snprintf(err, errlen, "cannot replay %s: %s", l->path, strerror(-rc));
		return rc;
	}
	if (whole < FILE_HEADER) {              /* new (or never got its header synced) */
		/* The directory too: records acknowledged later must not vanish with a file
		 * name that a power loss took back. */
		if ((rc = pwrite_all(l->fd, FILE_MAGIC, FILE_HEADER, 0)) < 0 ||
		    ftruncate(l->fd, FILE_HEADER) < 0 || fdatasync(l->fd) < 0 ||
		    (rc = fsync_dir(l->dir)) < 0) {
			rc = rc < 0 ? rc : -errno;
			snprintf(err, errlen, "cannot write %s: %s", l->path, strerror(-rc));
			return rc;
		}
		whole = FILE_HEADER;
	} else if (whole < (size_t)st.st_size) {
		l->stats.torn_bytes = (uint64_t)st.st_size - whole;
		log_warn("event=task_log_torn_tail file=%s valid_bytes=%zu cut_bytes=%" PRIu64,
			 l->path, whole, l->stats.torn_bytes);
		if (ftruncate(l->fd, (off_t)whole) < 0 || fdatasync(l->fd) < 0) {
			rc = -errno;
			snprintf(err, errlen, "cannot cut the torn tail of %s: %s", l->path,
				 strerror(-rc));
			return rc;
		}
	}
	l->size = whole;
	return 0;
}

int task_log_open(const char *dir, struct task_log **out, char *err, size_t errlen)
{
	struct task_log *l = calloc(1, sizeof(*l));
	int rc;

	*out = NULL;
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	l->fd = -1;
	if (path_join(l->path, sizeof(l->path), "%s/tasks.log", dir) < 0 ||
	    path_join(l->new_path, sizeof(l->new_path), "%s/tasks.log.new", dir) < 0 ||
	    path_join(l->dir, sizeof(l->dir), "%s", dir) < 0) {
		snprintf(err, errlen, "work dir path too long: %s", dir);
		rc = -ENAMETOOLONG;
		goto fail;
	}
	if (index_init(&l->idx, 1024) < 0) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto fail;
	}
	l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (l->fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", l->path, strerror(errno));
		goto fail;
	}
	/* One writer: a second master on this work dir would interleave its records. */
	if (flock(l->fd, LOCK_EX | LOCK_NB) < 0) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		snprintf(err, errlen, "%s is in use by another process (one master per work dir)",
			 l->path);
		goto fail;
	}
	unlink(l->new_path);            /* a compaction that did not finish: the old log stands */
	rc = load(l, err, errlen);
	if (rc < 0)
		goto fail;
	*out = l;
	return 0;
fail:
	task_log_close(l);
	return rc;
}

void task_log_close(struct task_log *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l->idx.slots);
	free(l->buf);
	free(l);
}

int task_log_scan(struct task_log *l, task_log_fn fn, void *arg)
{
	char *data;
	int rc = map_file(l->fd, (size_t)l->size, &data);

	if (rc < 0)
		return rc;
	rc = data ? scan_index(&l->idx, data, fn, arg) : 0;
	if (data)
		munmap(data, (size_t)l->size);
	return rc;
}

/* ---- appending ---- */

static int reserve(struct task_log *l, size_t more)
{
	size_t cap = l->buf_cap ? l->buf_cap : 64 * 1024;
	unsigned char *b;

	if (l->buf_len + more <= l->buf_cap)
		return 0;
	while (cap < l->buf_len + more)
		cap *= 2;
	if (!(b = realloc(l->buf, cap)))
		return -ENOMEM;
	l->buf = b;
	l->buf_cap = cap;
	return 0;
}

static int append(struct task_log *l, char type, uint64_t key, const char *text, size_t len)
{
	if (!key || len > REC_MAX)
		return -EINVAL;
	if (reserve(l, REC_HEADER + len) < 0)
		return -ENOMEM;
	rec_header(l->buf + l->buf_len, type, key, text, (uint32_t)len);
	if (len)
		memcpy(l->buf + l->buf_len + REC_HEADER, text, len);
	l->buf_len += REC_HEADER + len;
	return 0;
}

int task_log_put(struct task_log *l, uint64_t key, const char *text, size_t len)
{
	return append(l, 'P', key, text, len);
}

int task_log_update(struct task_log *l, uint64_t key, const char *text, size_t len)
{
	return append(l, 'U', key, text, len);
}

int task_log_del(struct task_log *l, uint64_t key)
{
	return append(l, 'D', key, NULL, 0);
}

static bool compaction_due(const struct task_log *l)
{
	uint64_t dead = l->size - FILE_HEADER - l->live_bytes;

	return dead >= COMPACT_MIN_DEAD && dead > 2 * l->live_bytes;
}

int task_log_sync(struct task_log *l)
{
	uint64_t off = l->size;
	int rc;

	if (!l->buf_len)
		return 0;
	rc = pwrite_all(l->fd, l->buf, l->buf_len, l->size);
	if (!rc && fdatasync(l->fd) < 0)
		rc = -errno;
	if (rc < 0) {
		/* Nothing after a half record would be replayed: cut it off, keep the buffer. */
		if (ftruncate(l->fd, (off_t)l->size) < 0)
			log_error("event=task_log_truncate_failed file=%s error=\"%s\"", l->path,
				  strerror(errno));
		log_error("event=task_log_sync_failed file=%s error=\"%s\"", l->path,
			  strerror(-rc));
		return rc;
	}
	for (size_t at = 0; at < l->buf_len;) {  /* the records just written, by their headers */
		const unsigned char *h = l->buf + at;
		uint32_t size = REC_HEADER + le32_load(h + 4);
		uint64_t key = le64_load(h + 16);

		/* (-ENOMEM: durable, but the index could not grow; compaction would drop it) */
		if (index_apply(&l->idx, (char)h[12], key, off + at, size, &l->live_bytes) < 0)
			log_error("event=task_log_index_full key=%" PRIu64, key);
		at += size;
		l->stats.records++;
	}
	l->size = off + l->buf_len;
	l->buf_len = 0;
	if (compaction_due(l) && (rc = task_log_compact(l)) < 0)
		log_error("event=task_log_compact_failed file=%s error=\"%s\"", l->path,
			  strerror(-rc));
	return 0;
}

/* ---- compaction ---- */

/* The new file's bytes, gathered into writes of up to COPY_CHUNK (not one per record). */
#define COPY_CHUNK (1u << 20)

struct copy_out {
	int fd;
	uint64_t off;           /* written so far */
	char *buf;
	size_t len;
};

static int copy_flush(struct copy_out *c)
{
	int rc = c->len ? pwrite_all(c->fd, c->buf, c->len, c->off) : 0;

	c->off += c->len;
	c->len = 0;
	return rc;
}

static int copy_add(struct copy_out *c, const void *data, size_t len)
{
	int rc;

	if (c->len + len > COPY_CHUNK && (rc = copy_flush(c)) < 0)
		return rc;
	if (len > COPY_CHUNK) {         /* (a record bigger than a chunk: straight out) */
		rc = pwrite_all(c->fd, data, len, c->off);
		c->off += len;
		return rc;
	}
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	return 0;
}

int task_log_compact(struct task_log *l)
{
	uint64_t new_size, old_size = l->size;
	struct copy_out out = { .fd = -1 };
	char *data = NULL;
	struct slot *live = NULL;
	size_t n = l->idx.count;
	int fd, rc;

	fd = open(l->new_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {     /* it becomes the log: held like it */
		rc = -errno;
		close(fd);
		return rc;
	}
	rc = map_file(l->fd, (size_t)old_size, &data);
	if (rc < 0)
		goto fail;
	/* Live records in file order: the copy reads the old file front to back. */
	live = sorted_slots(&l->idx, cmp_slot_off);
	out = (struct copy_out){ .fd = fd, .buf = malloc(COPY_CHUNK) };
	if (!live || !out.buf) {
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = copy_add(&out, FILE_MAGIC, FILE_HEADER)) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if ((rc = copy_add(&out, data + live[i].off, live[i].size)) < 0 ||
		    (rc = copy_add(&out, data + live[i].upd_off, live[i].upd_size)) < 0)
			goto fail;
	}
	if ((rc = copy_flush(&out)) < 0)
		goto fail;
	if (fdatasync(fd) < 0 || rename(l->new_path, l->path) < 0) {
		rc = -errno;
		goto fail;
	}
	/* The new file is the log from here on, even if the directory sync fails. */
	if ((rc = fsync_dir(l->dir)) < 0)
		log_error("event=task_log_dir_sync_failed dir=%s error=\"%s\"", l->dir,
			  strerror(-rc));
	close(l->fd);
	l->fd = fd;
	fd = -1;
	new_size = FILE_HEADER;
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &l->idx.slots[index_find(&l->idx, live[i].key)];

		s->off = new_size;
		s->upd_off = s->upd_size ? new_size + s->size : 0;
		new_size += s->size + s->upd_size;
	}
	log_info("event=task_log_compacted file=%s bytes_before=%" PRIu64 " bytes_after=%" PRIu64
		 " live=%zu", l->path, old_size, new_size, n);
	l->size = new_size;
	l->live_bytes = new_size - FILE_HEADER;
	l->stats.compactions++;
	rc = 0;
fail:
	if (fd >= 0) {
		close(fd);
		unlink(l->new_path);
	}
	if (data)
		munmap(data, (size_t)old_size);
	free(out.buf);
	free(live);
	return rc;
}

void task_log_stats(const struct task_log *l, struct task_log_stats *out)
{
	*out = l->stats;
	out->live = l->idx.count;
	out->file_bytes = l->size;
	out->live_bytes = l->live_bytes;
}
