/* store_sqlite.c - the SQLite backend of master/store.h: one table objects(kind, key, value)
 * in <work-dir>/master.db, WAL journal, prepared statements. Callers normally hold the
 * master lock; the store also guards itself with its own (recursive) mutex so a scan
 * callback may read or write, and a stray caller cannot corrupt a statement.
 *
 * Durability: WAL with synchronous=FULL: a committed change is on disk when the call
 * returns, so it survives a kill of the master and a power loss alike. Batch writes in
 * begin/commit to pay one fsync for many changes (the master's store_writer.c does so for
 * task and agent records). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>
#include "lib/log.h"
#include "lib/util.h"
#include "master/store.h"

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	pthread_mutex_t mu;
	sqlite3_stmt *put, *del, *get;
	bool in_tx;
};

static struct sqlite_store *S(struct store *s)
{
	return (struct sqlite_store *)s;
}

static int sql_err(struct sqlite_store *ss, const char *what)
{
	log_error("event=store_error op=%s error=\"%s\"", what, sqlite3_errmsg(ss->db));
	return -EIO;
}

static int exec(struct sqlite_store *ss, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(ss->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		log_error("event=store_error sql=\"%s\" error=\"%s\"", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -EIO;
	}
	return 0;
}

static int run_stmt(struct sqlite_store *ss, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : sql_err(ss, what);
}

static int s_put(struct store *s, const char *kind, const char *key, json_t *value)
{
	struct sqlite_store *ss = S(s);
	char *text = json_dumps(value, JSON_COMPACT);
	int rc;

	if (!text)
		return -EINVAL;
	pthread_mutex_lock(&ss->mu);
	sqlite3_bind_text(ss->put, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(ss->put, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(ss->put, 3, text, -1, SQLITE_STATIC);
	rc = run_stmt(ss, ss->put, "put");
	pthread_mutex_unlock(&ss->mu);
	free(text);
	return rc;
}

static const struct store_ops sqlite_ops;

bool store_is_sqlite(const struct store *s)
{
	return s && s->ops == &sqlite_ops;
}

/* put with the value already in JSON text (the master's store writer splices a task's
 * TASKINFO text into its record instead of parsing and re-printing it). */
int store_sqlite_put_text(struct store *s, const char *kind, const char *key, const char *text)
{
	struct sqlite_store *ss = S(s);
	int rc;

	pthread_mutex_lock(&ss->mu);
	sqlite3_bind_text(ss->put, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(ss->put, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(ss->put, 3, text, -1, SQLITE_STATIC);
	rc = run_stmt(ss, ss->put, "put");
	pthread_mutex_unlock(&ss->mu);
	return rc;
}

static int s_del(struct store *s, const char *kind, const char *key)
{
	struct sqlite_store *ss = S(s);
	int rc;

	pthread_mutex_lock(&ss->mu);
	sqlite3_bind_text(ss->del, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(ss->del, 2, key, -1, SQLITE_STATIC);
	rc = run_stmt(ss, ss->del, "del");
	pthread_mutex_unlock(&ss->mu);
	return rc;
}

static json_t *parse_value(const unsigned char *text, const char *kind, const char *key)
{
	json_error_t jerr;
	json_t *v = json_loads((const char *)text, 0, &jerr);

	if (!v)
		log_error("event=store_corrupt kind=%s key=\"%s\" error=\"%s\"", kind, key,
			  jerr.text);
	return v;
}

static int s_get(struct store *s, const char *kind, const char *key, json_t **out)
{
	struct sqlite_store *ss = S(s);
	int rc, step;

	*out = NULL;
	pthread_mutex_lock(&ss->mu);
	sqlite3_bind_text(ss->get, 1, kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(ss->get, 2, key, -1, SQLITE_STATIC);
	step = sqlite3_step(ss->get);
	if (step == SQLITE_ROW) {
		*out = parse_value(sqlite3_column_text(ss->get, 0), kind, key);
		rc = *out ? 0 : -EIO;
	} else if (step == SQLITE_DONE) {
		rc = -ENOENT;
	} else {
		rc = sql_err(ss, "get");
	}
	sqlite3_reset(ss->get);
	sqlite3_clear_bindings(ss->get);
	pthread_mutex_unlock(&ss->mu);
	return rc;
}

/* The value passed to fn is borrowed: fn must json_incref it to keep it. */
static int s_scan(struct store *s, const char *kind,
		  int (*fn)(const char *key, json_t *value, void *arg), void *arg)
{
	struct sqlite_store *ss = S(s);
	sqlite3_stmt *st = NULL;
	int rc = 0, step;

	pthread_mutex_lock(&ss->mu);
	/* A fresh statement per scan, so fn may call the store (even scan) again. */
	if (sqlite3_prepare_v2(ss->db, "SELECT key, value FROM objects WHERE kind = ?1 ORDER BY key",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = sql_err(ss, "scan");
		goto out;
	}
	sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		json_t *v = parse_value(sqlite3_column_text(st, 1), kind, key);

		if (!v)
			continue;       /* logged; one bad row must not hide the others */
		rc = fn(key, v, arg);
		json_decref(v);
		if (rc)
			goto out;
	}
	if (step != SQLITE_DONE)
		rc = sql_err(ss, "scan");
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ss->mu);
	return rc;
}

/* begin keeps the (recursive) mutex until commit: a transaction belongs to the thread that
 * opened it, and another thread's writes wait instead of landing inside it (they would
 * otherwise become durable only at someone else's commit). */
static int s_begin(struct store *s)
{
	struct sqlite_store *ss = S(s);
	int rc;

	pthread_mutex_lock(&ss->mu);
	if (ss->in_tx)
		rc = -EBUSY;            /* nested on this thread */
	else if ((rc = exec(ss, "BEGIN IMMEDIATE")) == 0)
		ss->in_tx = true;
	if (rc)
		pthread_mutex_unlock(&ss->mu);
	return rc;
}

static int s_commit(struct store *s)
{
	struct sqlite_store *ss = S(s);
	int rc;

	pthread_mutex_lock(&ss->mu);
	if (!ss->in_tx) {
		pthread_mutex_unlock(&ss->mu);
		return -EINVAL;
	}
	rc = exec(ss, "COMMIT");
	if (rc < 0)
		exec(ss, "ROLLBACK");
	ss->in_tx = false;
	pthread_mutex_unlock(&ss->mu);
	pthread_mutex_unlock(&ss->mu);          /* the one s_begin kept */
	return rc;
}

static void s_close(struct store *s)
{
	struct sqlite_store *ss = S(s);

	if (ss->in_tx)
		exec(ss, "ROLLBACK");
	sqlite3_finalize(ss->put);
	sqlite3_finalize(ss->del);
	sqlite3_finalize(ss->get);
	sqlite3_close(ss->db);
	pthread_mutex_destroy(&ss->mu);
	free(ss);
}

static const struct store_ops sqlite_ops = {
	.put = s_put, .del = s_del, .get = s_get, .scan = s_scan,
	.begin = s_begin, .commit = s_commit, .close = s_close,
};

static int prepare(struct sqlite_store *ss, const char *sql, sqlite3_stmt **st)
{
	return sqlite3_prepare_v3(ss->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) ==
			       SQLITE_OK ? 0 : -EIO;
}

int store_sqlite_open(const char *dir, struct store **out, char *err, size_t errlen)
{
	struct sqlite_store *ss;
	pthread_mutexattr_t attr;
	char path[PATH_MAX];
	int rc;

	*out = NULL;
	rc = mkdir_p(dir, 0700);
	if (rc < 0) {
		snprintf(err, errlen, "cannot create work dir %s: %s", dir, strerror(-rc));
		return rc;
	}
	if (path_join(path, sizeof(path), "%s/master.db", dir) < 0) {
		snprintf(err, errlen, "work dir path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	ss = calloc(1, sizeof(*ss));
	if (!ss) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ss->base.ops = &sqlite_ops;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&ss->mu, &attr);
	pthread_mutexattr_destroy(&attr);

	if (sqlite3_open_v2(path, &ss->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open %s: %s", path,
			 ss->db ? sqlite3_errmsg(ss->db) : "out of memory");
		rc = -EIO;
		goto fail;
	}
	sqlite3_busy_timeout(ss->db, 5000);
	/* 16 KiB pages (default 4 KiB) for a new file: a task record is ~700 bytes, and a
	 * placement wave's records go to the end of the table; fewer, larger pages cost the
	 * writer ~5-13% less CPU at 300k tasks (docs/benchmarks.md). An existing file keeps
	 * its page size (a no-op in WAL mode). */
	if (exec(ss, "PRAGMA page_size=16384") < 0 ||
	    exec(ss, "PRAGMA journal_mode=WAL") < 0 ||
	    exec(ss, "PRAGMA synchronous=FULL") < 0 ||
	    /* 64 MiB of page cache (default 2 MiB): with a million task records the B-tree
	     * no longer fits the default and every insert re-reads pages. */
	    exec(ss, "PRAGMA cache_size=-65536") < 0 ||
	    /* Checkpoint every 4096 pages, 64 MiB of WAL at 16 KiB (default 1000 pages): a
	     * page changed by many commits (a placement wave rewrites the same task pages)
	     * is copied back once. */
	    exec(ss, "PRAGMA wal_autocheckpoint=4096") < 0 ||
	    exec(ss, "CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, key TEXT NOT NULL,"
		     " value TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID") < 0) {
		snprintf(err, errlen, "cannot initialise %s: %s", path, sqlite3_errmsg(ss->db));
		rc = -EIO;
		goto fail;
	}
	if (prepare(ss, "INSERT OR REPLACE INTO objects (kind, key, value) VALUES (?1, ?2, ?3)",
		    &ss->put) < 0 ||
	    prepare(ss, "DELETE FROM objects WHERE kind = ?1 AND key = ?2", &ss->del) < 0 ||
	    prepare(ss, "SELECT value FROM objects WHERE kind = ?1 AND key = ?2", &ss->get) < 0) {
		snprintf(err, errlen, "cannot prepare statements on %s: %s", path,
			 sqlite3_errmsg(ss->db));
		rc = -EIO;
		goto fail;
	}
	*out = &ss->base;
	return 0;
fail:
	s_close(&ss->base);
	return rc;
}
