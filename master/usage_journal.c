/* usage_journal.c - the usage journal file (see usage_journal.h): record encoding, append +
 * fdatasync with the file cut back on failure, rotation, and replay that stops at a torn
 * tail. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/usage_journal.h"

#define UJ_MAGIC 0x314a5550u        /* "PUJ1" */
#define UJ_HEADER 12                /* magic, payload length, crc32 */
#define UJ_MAX_PAYLOAD (64u << 20)
#define UJ_READING_FIXED (1 + 1 + 2 + 8 + 8 * USAGE_NFIELDS)

struct usage_journal {
	int fd;
	char path[PATH_MAX], old[PATH_MAX], dir[PATH_MAX];
	size_t size;
};

static int reserve(struct ujbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->cap - b->len >= more)
		return 0;
	cap = b->cap ? b->cap : 4096;
	while (cap - b->len < more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static char *put(char *p, const void *v, size_t n)
{
	if (n)
		memcpy(p, v, n);
	return p + n;
}

int usage_journal_encode(struct ujbuf *b, const char *agent_id, uint64_t seq,
			 const struct usage_reading *const *readings, size_t n)
{
	size_t alen = strlen(agent_id), need = UJ_HEADER + 8 + 2 + alen + 4;
	uint32_t magic = UJ_MAGIC, plen, crc, nr = (uint32_t)n;
	uint16_t a16 = (uint16_t)alen;
	char *start, *p;

	if (alen > UINT16_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (readings[i]->app_id && strlen(readings[i]->app_id) > UINT16_MAX)
			return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		need += UJ_READING_FIXED + strlen(readings[i]->task_id) +
			(readings[i]->app_id ? strlen(readings[i]->app_id) : 0);
	if (need - UJ_HEADER > UJ_MAX_PAYLOAD)
		return -E2BIG;
	if (reserve(b, need))
		return -ENOMEM;
	start = b->p + b->len;
	p = start + UJ_HEADER;
	p = put(p, &seq, 8);
	p = put(p, &a16, 2);
	p = put(p, agent_id, alen);
	p = put(p, &nr, 4);
	for (size_t i = 0; i < n; i++) {
		const struct usage_reading *r = readings[i];
		size_t tl = strlen(r->task_id), al = r->app_id ? strlen(r->app_id) : 0;
		uint8_t flags = (r->final ? 1 : 0) | (r->app_id ? 2 : 0), t8 = (uint8_t)tl;
		uint16_t a = (uint16_t)al;

		p = put(p, &flags, 1);
		p = put(p, &t8, 1);
		p = put(p, &a, 2);
		p = put(p, &r->at, 8);
		p = put(p, r->counters, 8 * USAGE_NFIELDS);
		p = put(p, r->task_id, tl);
		p = put(p, r->app_id, a);
	}
	plen = (uint32_t)(p - start - UJ_HEADER);
	crc = (uint32_t)crc32(0, (const Bytef *)start + UJ_HEADER, plen);
	memcpy(start, &magic, 4);
	memcpy(start + 4, &plen, 4);
	memcpy(start + 8, &crc, 4);
	b->len += (size_t)(p - start);
	return 0;
}

int usage_journal_open(const char *dir, struct usage_journal **out)
{
	struct usage_journal *j = calloc(1, sizeof(*j));
	struct stat sb;
	int rc;

	if (!j)
		return -ENOMEM;
	snprintf(j->dir, sizeof(j->dir), "%s", dir);
	snprintf(j->path, sizeof(j->path), "%s/usage.journal", dir);
	snprintf(j->old, sizeof(j->old), "%s/usage.journal.old", dir);
	j->fd = open(j->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (j->fd < 0 || fstat(j->fd, &sb) < 0) {
		int e = -errno;

		if (j->fd >= 0)
			close(j->fd);
		free(j);
		return e;
	}
	j->size = (size_t)sb.st_size;
	/* A new (empty) journal's name must be durable before batches appended to it are
	 * acknowledged. */
	if (!j->size && (rc = fsync_dir(dir)) < 0)
		log_warn("event=usage_journal_dir_sync_failed dir=%s error=\"%s\"", dir,
			 strerror(-rc));
	*out = j;
	return 0;
}

void usage_journal_close(struct usage_journal *j)
{
	if (!j)
		return;
	close(j->fd);
	free(j);
}

size_t usage_journal_size(const struct usage_journal *j)
{
	return j->size;
}

int usage_journal_append(struct usage_journal *j, const void *data, size_t len)
{
	int rc = pwrite_all(j->fd, data, len, j->size);

	if (rc < 0)
		goto fail;
	if (fdatasync(j->fd) < 0) {
		rc = -errno;
		goto fail;
	}
	j->size += len;
	return 0;
fail:
	/* Nothing after a torn record would ever be replayed: cut it off, the caller retries. */
	if (ftruncate(j->fd, (off_t)j->size) < 0)
		log_error("event=usage_journal_truncate_failed error=\"%s\"", strerror(errno));
	return rc;
}

int usage_journal_rotate(struct usage_journal *j)
{
	int fd;

	if (rename(j->path, j->old) < 0)
		return -errno;
	fd = open(j->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = -errno;

		/* Appends keep going to the renamed file: put it back under its name (if even
		 * that fails, the caller must not delete usage.journal.old). */
		if (rename(j->old, j->path) < 0)
			log_error("event=usage_journal_unrename_failed error=\"%s\"", strerror(errno));
		return e;
	}
	close(j->fd);
	j->fd = fd;
	j->size = 0;
	return fsync_dir(j->dir);
}

int usage_journal_drop_old(struct usage_journal *j)
{
	if (unlink(j->old) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static const char *get(const char *p, const char *end, void *v, size_t n)
{
	if (!p || (size_t)(end - p) < n)
		return NULL;
	memcpy(v, p, n);
	return p + n;
}

/* One payload into b (its strings copied into b->arena). -EINVAL if it does not parse. */
static int decode(const char *p, size_t len, struct usage_batch *b)
{
	const char *end = p + len;
	uint16_t alen;
	uint32_t n;
	char *a;

	memset(b, 0, sizeof(*b));
	p = get(p, end, &b->seq, 8);
	p = get(p, end, &alen, 2);
	if (!p || (size_t)(end - p) < alen)
		return -EINVAL;
	a = b->arena = malloc(len + 1);      /* every string and its NUL fit */
	if (!a)
		return -ENOMEM;
	memcpy(a, p, alen);
	a[alen] = '\0';
	b->agent_id = a;
	a += alen + 1;
	p = get(p + alen, end, &n, 4);
	if (!p || alen == 0 || b->seq == 0 || n > (size_t)(end - p) / UJ_READING_FIXED)
		goto bad;
	b->reports = calloc(n ? n : 1, sizeof(*b->reports));
	if (!b->reports) {
		usage_wire_free(b);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct usage_reading *r = &b->reports[i];
		uint8_t flags, tl;
		uint16_t al;

		p = get(p, end, &flags, 1);
		p = get(p, end, &tl, 1);
		p = get(p, end, &al, 2);
		p = get(p, end, &r->at, 8);
		p = get(p, end, r->counters, 8 * USAGE_NFIELDS);
		if (!p || tl == 0 || (size_t)(end - p) < (size_t)tl + al || flags > 3 ||
		    (!(flags & 2) && al))
			goto bad;
		r->has_at = true;
		r->final = flags & 1;
		memcpy(a, p, tl);
		a[tl] = '\0';
		r->task_id = a;
		a += tl + 1;
		p += tl;
		if (flags & 2) {
			memcpy(a, p, al);
			a[al] = '\0';
			r->app_id = a;
			a += al + 1;
		}
		p += al;
		for (int f = 0; f < USAGE_NFIELDS; f++)
			if (r->counters[f] < 0)
				goto bad;
		if (strlen(r->task_id) != tl || (r->app_id && strlen(r->app_id) != al))
			goto bad;
	}
	b->nreports = n;
	if (p != end || strlen(b->agent_id) != alen)
		goto bad;
	return 0;
bad:
	usage_wire_free(b);
	return -EINVAL;
}

size_t usage_journal_replay_buf(const char *data, size_t len,
				int (*fn)(void *arg, const struct usage_batch *b), void *arg,
				size_t *records, int *rc)
{
	size_t off = 0;

	*rc = 0;
	while (len - off >= UJ_HEADER) {
		uint32_t magic, plen, crc;
		struct usage_batch b;

		memcpy(&magic, data + off, 4);
		memcpy(&plen, data + off + 4, 4);
		memcpy(&crc, data + off + 8, 4);
		if (magic != UJ_MAGIC || plen > UJ_MAX_PAYLOAD || plen > len - off - UJ_HEADER ||
		    crc != (uint32_t)crc32(0, (const Bytef *)data + off + UJ_HEADER, plen))
			break;
		*rc = decode(data + off + UJ_HEADER, plen, &b);
		if (*rc == -EINVAL) {
			*rc = 0;
			break;          /* a record we never wrote: treat as the torn end */
		}
		if (*rc)
			break;
		*rc = fn(arg, &b);
		usage_wire_free(&b);
		if (*rc)
			break;
		off += UJ_HEADER + plen;
		(*records)++;
	}
	return off;
}

static int replay_file(const char *path, int (*fn)(void *arg, const struct usage_batch *b),
		       void *arg, size_t *records, size_t *torn)
{
	size_t len = 0, used;
	char *data = read_file(path, &len);
	int rc;

	if (!data)
		return errno == ENOENT ? 0 : -errno;
	used = usage_journal_replay_buf(data, len, fn, arg, records, &rc);
	if (!rc && used < len) {
		(*torn)++;
		log_warn("event=usage_journal_torn file=%s kept_bytes=%zu dropped_bytes=%zu", path, used,
			 len - used);
	}
	free(data);
	return rc;
}

int usage_journal_replay(const char *dir, int (*fn)(void *arg, const struct usage_batch *b),
			 void *arg, size_t *records, size_t *torn)
{
	char path[PATH_MAX];
	int rc;

	*records = 0;
	*torn = 0;
	snprintf(path, sizeof(path), "%s/usage.journal.old", dir);
	if ((rc = replay_file(path, fn, arg, records, torn)))
		return rc;
	snprintf(path, sizeof(path), "%s/usage.journal", dir);
	return replay_file(path, fn, arg, records, torn);
}
