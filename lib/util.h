/* util.h - small helpers every program needs: clocks, ids, files, directories. */
#ifndef PACER_UTIL_H
#define PACER_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic seconds (for timeouts) and wall-clock seconds since the epoch in whole
 * microseconds (for records). */
double now_mono(void);
/* The time seconds (>= 0) from now on clock (CLOCK_MONOTONIC, CLOCK_REALTIME), as the
 * deadline pthread_cond_timedwait takes on a condition variable of that clock. */
struct timespec timespec_after(clockid_t clock, double seconds);
/* src into dst[n] (n > 0), cut to n - 1 bytes as snprintf "%s" would, without its format
 * parsing (for copies made per task); returns the length copied. */
size_t strcpy_cut(char *dst, size_t n, const char *src);
double now_wall(void);
/* ISO-8601 UTC with milliseconds, as Marathon prints: 2026-11-25T15:30:00.123Z */
void format_iso8601(double wall_seconds, char out[32]);

/* Random RFC-4122 v4 uuid in lower-case text form (36 chars + NUL). */
void uuid_v4(char out[37]);
/* RFC 9562 v7 uuid: milliseconds since the epoch, then a counter, then random bits. The
 * ids one process makes sort in the order it made them (ids that are B-tree keys go in
 * at the end instead of at random pages). Thread-safe. */
void uuid_v7(char out[37]);
/* Random lower-case hex string of n chars (n even), NUL-terminated. */
void random_hex(char *out, size_t n);

/* Whole-file read (NUL-terminated; len optional). Returns NULL and sets errno on failure. */
char *read_file(const char *path, size_t *len);
/* Write via a temp file + fsync + rename, so readers see the old or the new content. */
int write_file_atomic(const char *path, const void *data, size_t len);
int json_write_file_atomic(const char *path, json_t *value);
/* The same all-or-nothing replace (temp file + rename) without fsync: for files that only
 * matter while the writer's processes live (they are meaningless after a host crash). */
int write_file_replace(const char *path, const void *data, size_t len);
int json_replace_file(const char *path, json_t *value);
/* mkdir -p; returns 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* calloc for big tables that are probed (read) before they are written: the zeroes are
 * written here, so every page is a private one from the start. A fresh calloc block is
 * untouched, a first read maps the shared zero page, and each later first write to a
 * page then takes a copy-on-write fault that flushes the TLB of every CPU running the
 * process (~10-15% of the master's store writer at a million tasks). NULL on overflow or
 * without memory. */
void *calloc_written(size_t n, size_t size);
/* pwrite of all len bytes at off (retrying short writes and EINTR). 0 or -errno. */
int pwrite_all(int fd, const void *data, size_t len, uint64_t off);
/* fsync of a directory (after a rename or create in it). 0 or -errno. */
int fsync_dir(const char *dir);
/* rm -rf that stays on one file system; returns 0 or -errno. */
int remove_tree(const char *path);
/* Writes a short string to a file (cgroup/proc knobs). Returns 0 or -errno. */
int write_string_file(const char *path, const char *s);

/* Makes s valid UTF-8 in place: a sequence cut at the end (by truncation) is dropped, other
 * invalid bytes become '?'. For messages that quote user input into JSON (jansson refuses
 * strings that are not UTF-8, and the message would be lost). */
void utf8_sanitize(char *s);
/* The length of the valid UTF-8 sequence of 2-4 bytes at p (before end), or 0 (ASCII,
 * invalid, overlong, a surrogate, above U+10FFFF, cut short). */
size_t utf8_seq_len(const unsigned char *p, const unsigned char *end);
/* True when s[0..n) is valid UTF-8 without NUL bytes. */
bool utf8_valid(const char *s, size_t n);
/* Raises the open-files soft limit to the hard limit (a server holding many connections). */
void raise_nofile_limit(void);

/* snprintf that reports truncation: returns 0 or -ENAMETOOLONG. */
int path_join(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
