/* json_text.c - the JSON text writer of json_text.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/json_text.h"

void jt_init(struct jtext *b)
{
	memset(b, 0, sizeof(*b));
}

static bool reserve(struct jtext *b, size_t more)
{
	size_t cap;
	char *s;

	if (b->failed)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + more + 1)
		cap *= 2;
	s = realloc(b->s, cap);
	if (!s) {
		b->failed = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void jt_reserve(struct jtext *b, size_t n)
{
	reserve(b, n);
}

static void put(struct jtext *b, const char *s, size_t n)
{
	if (!reserve(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void jt_raw(struct jtext *b, const char *s)
{
	put(b, s, strlen(s));
}

void jt_raw_n(struct jtext *b, const char *s, size_t n)
{
	put(b, s, n);
}

void jt_sep(struct jtext *b)
{
	if (b->len && b->s[b->len - 1] != '{' && b->s[b->len - 1] != '[')
		put(b, ",", 1);
}

void jt_key(struct jtext *b, const char *key)
{
	jt_sep(b);
	jt_str(b, key);
	put(b, ":", 1);
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 (as JSON parsers check it:
 * no overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *p)
{
	unsigned c = p[0], n, cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	for (unsigned i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;       /* also stops at the terminating NUL */
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

void jt_str(struct jtext *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	char esc[8];

	if (!s) {
		put(b, "null", 4);
		return;
	}
	put(b, "\"", 1);
	while (*p) {
		const unsigned char *run = p;
		size_t n;

		/* The longest run that needs no escaping goes in one copy (ASCII first: ids,
		 * keys and states are ASCII). */
		for (;;) {
			while (*p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
				p++;
			if (*p < 0x80 || !(n = utf8_len(p)))
				break;
			p += n;
		}
		put(b, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put(b, esc, 2);
		} else if (*p < 0x20) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			put(b, esc, 6);
		} else {
			put(b, "?", 1);         /* not valid UTF-8 */
		}
		p++;
	}
	put(b, "\"", 1);
}

/* Writes v with k decimals (|N| = |v| x 10^k < 2^53) when that is exactly v read back:
 * N / 10^k is correctly rounded, as a reader's strtod of the text is. Trailing zeros
 * dropped, at least one decimal kept. Returns the length, or 0 when no k <= 6 fits. */
static int short_decimal(double v, char *out)
{
	static const double pow10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
	char digits[24];

	if (!(fabs(v) < 9e15))
		return 0;
	for (int k = 0; k <= 6; k++) {
		double scaled = v * pow10[k];
		long long n;
		int len, at, o = 0;

		if (!(fabs(scaled) < 9007199254740992.0))
			return 0;
		n = llround(scaled);
		if ((double)n / pow10[k] != v)
			continue;
		if (n < 0) {
			out[o++] = '-';
			n = -n;
		}
		len = 0;                        /* the digits, at least k + 1 (0.05: "005") */
		do {
			digits[sizeof(digits) - 1 - len++] = (char)('0' + n % 10);
			n /= 10;
		} while (n || len <= k);
		memmove(digits, digits + sizeof(digits) - len, (size_t)len);
		at = len - k;
		memcpy(out + o, digits, (size_t)at);
		o += at;
		out[o++] = '.';
		if (!k)
			out[o++] = '0';
		memcpy(out + o, digits + at, (size_t)k);
		o += k;
		out[o] = '\0';
		return o;
	}
	return 0;
}

void jt_num(struct jtext *b, double v)
{
	char num[32];
	int n;

	if (!isfinite(v))
		v = 0;
	if (v == 0)
		v = 0;                  /* -0 reads back as 0 anyway: print it so */
	if ((n = short_decimal(v, num)) > 0) {
		put(b, num, (size_t)n);
		return;
	}
	n = snprintf(num, sizeof(num), "%.17g", v);
	/* A whole number prints without a point; keep it a real for readers that care. */
	if (!strpbrk(num, ".eEn"))
		num[n++] = '.', num[n++] = '0', num[n] = '\0';
	put(b, num, (size_t)n);
}

void jt_int(struct jtext *b, long long v)
{
	char num[24], *p = num + sizeof(num);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {                            /* "%lld" without printf (ports: several per task) */
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	put(b, p, (size_t)(num + sizeof(num) - p));
}

void jt_bool(struct jtext *b, bool v)
{
	if (v)
		put(b, "true", 4);
	else
		put(b, "false", 5);
}

char *jt_take(struct jtext *b)
{
	char *s = b->failed ? NULL : b->s;

	if (!s && !b->failed)
		s = strdup("");
	if (b->failed)
		free(b->s);
	jt_init(b);
	return s;
}

void jt_free(struct jtext *b)
{
	free(b->s);
	jt_init(b);
}

char *json_dump_exact(const json_t *value, size_t *len)
{
	char buf[4096], *s;
	size_t n = json_dumpb(value, buf, sizeof(buf), JSON_COMPACT);

	if (n == 0)
		return NULL;
	s = malloc(n + 1);
	if (!s)
		return NULL;
	if (n <= sizeof(buf))
		memcpy(s, buf, n);
	else if (json_dumpb(value, s, n, JSON_COMPACT) != n) {   /* measured, now written */
		free(s);
		return NULL;
	}
	s[n] = '\0';
	*len = n;
	return s;
}
