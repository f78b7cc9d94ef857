/* util.c - clocks, random ids, whole-file I/O, directories (see util.h). */
#include "lib/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timespec timespec_after(clockid_t clock, double seconds)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	ts.tv_sec += (time_t)seconds;
	ts.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

size_t strcpy_cut(char *dst, size_t n, const char *src)
{
	size_t len = strnlen(src, n - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
	return len;
}

double now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	/* Whole microseconds: such a time prints as a short decimal that reads back exactly
	 * (lib/json_text.c), and stored records hold many of them. */
	return (double)((long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000) / 1e6;
}

void format_iso8601(double wall_seconds, char out[32])
{
	time_t secs = (time_t)wall_seconds;
	int millis = (int)((wall_seconds - (double)secs) * 1000.0);
	struct tm tm;

	if (millis < 0)
		millis = 0;
	if (millis > 999)
		millis = 999;
	size_t n;

	gmtime_r(&secs, &tm);
	n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03dZ", millis % 1000);
}

static void fill_random(void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = getrandom((char *)buf + done, len - done, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			abort(); /* no entropy source at all: nothing sane to do */
		}
		done += (size_t)n;
	}
}

/* Random bytes for uuids (not secrets: random_hex reads the kernel every time), taken from
 * a per-thread pool of getrandom output: the master makes a uuid per task, and a syscall
 * each was ~3% of its CPU at 1M tasks. A forked child starts with an empty pool, so it never
 * repeats its parent's bytes. */
#define UUID_POOL 512
static __thread unsigned char uuid_pool[UUID_POOL];
static __thread size_t uuid_pool_left;
static pthread_once_t uuid_pool_once = PTHREAD_ONCE_INIT;

static void uuid_pool_forget(void)
{
	uuid_pool_left = 0;
}

static void uuid_pool_at_fork(void)
{
	pthread_atfork(NULL, NULL, uuid_pool_forget);
}

static void uuid_random(unsigned char *b, size_t n)
{
	unsigned char *from;

	pthread_once(&uuid_pool_once, uuid_pool_at_fork);
	if (uuid_pool_left < n) {
		fill_random(uuid_pool, UUID_POOL);
		uuid_pool_left = UUID_POOL;
	}
	from = uuid_pool + UUID_POOL - uuid_pool_left;
	memcpy(b, from, n);
	memset(from, 0, n);             /* each byte handed out once */
	uuid_pool_left -= n;
}

/* The 16 bytes as 8-4-4-4-12 lower-case hex. */
static void uuid_text(const unsigned char b[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	char *o = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*o++ = '-';
		*o++ = hex[b[i] >> 4];
		*o++ = hex[b[i] & 0xf];
	}
	*o = '\0';
}

void uuid_v4(char out[37])
{
	unsigned char b[16];

	uuid_random(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	uuid_text(b, out);
}

/* uuid_v7's order: the last millisecond used and the 12-bit counter within it (RFC 9562
 * method 1; a counter that runs over borrows the next millisecond). */
static pthread_mutex_t uuid7_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t uuid7_ms;
static unsigned uuid7_seq;

void uuid_v7(char out[37])
{
	unsigned char b[16];
	struct timespec ts;
	uint64_t ms;
	unsigned seq;

	uuid_random(b, sizeof(b));
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	pthread_mutex_lock(&uuid7_mu);
	if (ms > uuid7_ms) {
		uuid7_ms = ms;
		uuid7_seq = b[6] & 0x07;        /* a random start, far from running over */
	} else if (++uuid7_seq > 0xfff) {
		uuid7_ms++;
		uuid7_seq = 0;
	}
	ms = uuid7_ms;
	seq = uuid7_seq;
	pthread_mutex_unlock(&uuid7_mu);
	for (int i = 5; i >= 0; i--) {
		b[i] = (unsigned char)(ms & 0xff);
		ms >>= 8;
	}
	b[6] = (unsigned char)(0x70 | (seq >> 8));
	b[7] = (unsigned char)(seq & 0xff);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	uuid_text(b, out);
}

void random_hex(char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[64];

	while (n > 0) {
		size_t chunk = n / 2 > sizeof(b) ? sizeof(b) : (n + 1) / 2;

		fill_random(b, chunk);
		for (size_t i = 0; i < chunk && n > 0; i++) {
			*out++ = hex[b[i] >> 4];
			if (--n == 0)
				break;
			*out++ = hex[b[i] & 15];
			n--;
		}
	}
	*out = '\0';
}

char *read_file(const char *path, size_t *len)
{
	size_t cap = 4096, used = 0;
	char *buf = NULL, *grown;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (!buf)
		goto err;
	for (;;) {
		ssize_t n;

		if (used + 1 >= cap) {
			cap *= 2;
			grown = realloc(buf, cap);
			if (!grown)
				goto err;
			buf = grown;
		}
		n = read(fd, buf + used, cap - used - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto err;
		if (n == 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	buf[used] = '\0';
	if (len)
		*len = used;
	return buf;
err:
	{
		int saved = errno;

		free(buf);
		close(fd);
		errno = saved ? saved : ENOMEM;
	}
	return NULL;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int replace_file(const char *path, const void *data, size_t len, bool sync)
{
	char tmp[4096];
	int fd, rc;

	if (path_join(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) < 0)
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	if (rc == 0 && sync && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

int write_file_atomic(const char *path, const void *data, size_t len)
{
	return replace_file(path, data, len, true);
}

int write_file_replace(const char *path, const void *data, size_t len)
{
	return replace_file(path, data, len, false);
}

static int json_to_file(const char *path, json_t *value, bool sync)
{
	char *text = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	if (!text)
		return -ENOMEM;
	rc = replace_file(path, text, strlen(text), sync);
	free(text);
	return rc;
}

int json_write_file_atomic(const char *path, json_t *value)
{
	return json_to_file(path, value, true);
}

int json_replace_file(const char *path, json_t *value)
{
	return json_to_file(path, value, false);
}

int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int remove_tree_at(int dirfd, const char *name, dev_t dev)
{
	struct stat st;
	int fd, rc = 0;
	DIR *d;
	struct dirent *e;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
	if (st.st_dev != dev)
		return -EXDEV; /* a mount point: never descend into another file system */
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		int r;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		r = remove_tree_at(fd, e->d_name, dev);
		if (r < 0 && rc == 0)
			rc = r;
	}
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
		rc = -errno;
	return rc;
}

int remove_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	return remove_tree_at(AT_FDCWD, path, st.st_dev);
}

int write_string_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -errno;
	rc = write_all(fd, s, strlen(s));
	close(fd);
	return rc;
}

int path_join(char *out, size_t outlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, outlen, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= outlen)
		return -ENAMETOOLONG;
	return 0;
}

void utf8_sanitize(char *s)
{
	json_t *probe;

	for (unsigned char *p = (unsigned char *)s; *p;) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 :
			   (*p & 0xf8) == 0xf0 ? 4 : 0;
		size_t k = 1;

		while (n && k < n && (p[k] & 0xc0) == 0x80)
			k++;
		if (n && k == n)
			p += n;
		else if (n && !p[k])
			*p = '\0';                    /* cut in the middle of a character */
		else
			*p++ = '?';
	}
	probe = json_string(s);                 /* overlong forms, surrogates: ASCII only */
	if (!probe)
		for (char *p = s; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
	json_decref(probe);
}

size_t utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0], cp;
	size_t n;

	if (c < 0xc2)
		return 0;
	n = c < 0xe0 ? 2 : c < 0xf0 ? 3 : c < 0xf5 ? 4 : 0;
	if (!n || (size_t)(end - p) < n)
		return 0;
	cp = c & (0xff >> (n + 1));
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (cp >= 0xd800 && cp <= 0xdfff) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;

	while (p < end) {
		size_t k;

		if (*p && *p < 0x80) {
			p++;
			continue;
		}
		if (!*p || !(k = utf8_seq_len(p, end)))
			return false;
		p += k;
	}
	return true;
}

void raise_nofile_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int pwrite_all(int fd, const void *data, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, (const char *)data + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

void *calloc_written(size_t n, size_t size)
{
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	p = malloc(n * size);
	if (p)
		memset(p, 0, n * size);
	return p;
}
