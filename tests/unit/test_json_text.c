/* test_json_text.c - the JSON text writer (lib/json_text.c): what it writes parses back
 * with jansson to the same values, strings escaped, invalid UTF-8 replaced, numbers exact. */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>
#include "lib/json_text.h"

static json_t *parse(char *text)
{
	json_error_t e;
	json_t *j;

	assert_non_null(text);
	j = json_loads(text, 0, &e);
	if (!j)
		fail_msg("not JSON: %s (%s)", text, e.text);
	free(text);
	return j;
}

static void test_object_round_trip(void **state)
{
	const char *odd = "q\"b\\s/\n\t\x01\x1f caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	double nums[] = { 0, -0.5, 0.01, 0.1, 1e-300, 1.7976931348623157e308, 1795000000.123456,
			  8, -3 };
	struct jtext b;
	json_t *j, *a;

	(void)state;
	jt_init(&b);
	jt_raw(&b, "{");
	jt_key(&b, "s");
	jt_str(&b, odd);
	jt_key(&b, "k\"ey");
	jt_str(&b, NULL);
	jt_key(&b, "t");
	jt_bool(&b, true);
	jt_key(&b, "f");
	jt_bool(&b, false);
	jt_key(&b, "i");
	jt_int(&b, -9007199254740993LL);
	jt_key(&b, "empty");
	jt_raw(&b, "[]");
	jt_key(&b, "n");
	jt_raw(&b, "[");
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		jt_sep(&b);
		jt_num(&b, nums[i]);
	}
	jt_sep(&b);
	jt_num(&b, NAN);
	jt_sep(&b);
	jt_num(&b, INFINITY);
	jt_raw(&b, "]}");
	j = parse(jt_take(&b));
	assert_string_equal(json_string_value(json_object_get(j, "s")), odd);
	assert_true(json_is_null(json_object_get(j, "k\"ey")));
	assert_true(json_is_true(json_object_get(j, "t")));
	assert_true(json_is_false(json_object_get(j, "f")));
	assert_true(json_integer_value(json_object_get(j, "i")) == -9007199254740993LL);
	assert_int_equal(json_array_size(json_object_get(j, "empty")), 0);
	a = json_object_get(j, "n");
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		assert_true(json_is_real(json_array_get(a, i)));
		assert_true(json_real_value(json_array_get(a, i)) == nums[i]);
	}
	assert_true(json_number_value(json_array_get(a, 9)) == 0);      /* not finite: 0 */
	assert_true(json_number_value(json_array_get(a, 10)) == 0);
	json_decref(j);
}

/* Bytes that are not valid UTF-8 (a cut character, overlong forms, surrogates, stray
 * continuation bytes, above U+10FFFF) become '?', so the text always parses. */
static void test_invalid_utf8_replaced(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "ab\xc3", "ab?" },
		{ "\xc0\xaf", "??" },
		{ "\xed\xa0\x80x", "???x" },
		{ "\x80z", "?z" },
		{ "\xf4\x90\x80\x80", "????" },
		{ "\xe2\x82", "??" },
		{ "ok\xc3\xa9", "ok\xc3\xa9" },
	};
	struct jtext b;
	json_t *j;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		jt_init(&b);
		jt_str(&b, cases[i].in);
		assert_non_null(b.s);
		j = json_loads(b.s, JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		assert_string_equal(json_string_value(j), cases[i].out);
		json_decref(j);
		jt_free(&b);
	}
}

/* Long output grows the buffer; an empty writer gives "". */
static void test_growth_and_empty(void **state)
{
	struct jtext b;
	char *s;
	json_t *j;

	(void)state;
	jt_init(&b);
	s = jt_take(&b);
	assert_string_equal(s, "");
	free(s);
	jt_raw(&b, "[");
	for (int i = 0; i < 10000; i++) {
		jt_sep(&b);
		jt_int(&b, i);
	}
	jt_raw(&b, "]");
	j = parse(jt_take(&b));
	assert_int_equal(json_array_size(j), 10000);
	assert_int_equal(json_integer_value(json_array_get(j, 9999)), 9999);
	json_decref(j);
}

/* json_dump_exact: small and large (past its stack buffer) values, the same text as json_dumps. */
static void test_dump_exact(void **state)
{
	json_t *small = json_pack("{s:s,s:i}", "a", "b", "n", 1), *big = json_array();
	char *want, *got;
	size_t len = 0;

	(void)state;
	got = json_dump_exact(small, &len);
	assert_string_equal(got, "{\"a\":\"b\",\"n\":1}");
	assert_int_equal(len, strlen(got));
	free(got);
	for (int i = 0; i < 2000; i++)
		json_array_append_new(big, json_string("twelve bytes"));
	want = json_dumps(big, JSON_COMPACT);
	got = json_dump_exact(big, &len);
	assert_true(len > 4096);
	assert_string_equal(got, want);
	assert_int_equal(len, strlen(want));
	free(got);
	free(want);
	json_decref(small);
	json_decref(big);
}

/* Numbers: short decimals where one reads back exactly (timestamps in microseconds,
 * fractions of a CPU), %.17g otherwise; every one reads back as the same double. */
static void test_numbers_short_and_exact(void **state)
{
	static const struct { double v; const char *text; } shown[] = {
		{ 0.1, "0.1" }, { 0.05, "0.05" }, { -0.05, "-0.05" }, { 64, "64.0" },
		{ -5, "-5.0" }, { 0, "0.0" }, { -0.0, "0.0" }, { 1764135000.123456, "1764135000.123456" },
		{ 1764135000.5, "1764135000.5" }, { 2.5e-7, "2.4999999999999999e-07" },
	};
	uint64_t x = 88172645463325252ULL;

	(void)state;
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++) {
		struct jtext b;
		char *t;

		jt_init(&b);
		jt_num(&b, shown[i].v);
		t = jt_take(&b);
		assert_string_equal(t, shown[i].text);
		free(t);
	}
	/* Random doubles of every magnitude, microsecond timestamps, decimals of few digits. */
	for (int i = 0; i < 300000; i++) {
		struct jtext b;
		double v, back;
		uint64_t bits;
		char *t;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		switch (i % 3) {
		case 0:
			bits = x;
			memcpy(&v, &bits, sizeof(v));
			if (!isfinite(v))
				continue;
			break;
		case 1:
			v = (double)(1700000000000000LL + (long long)(x % 100000000000000ULL)) / 1e6;
			break;
		default:
			v = (double)(long long)(x % 2000001 - 1000000) / (double)(1 + x % 1000);
		}
		jt_init(&b);
		jt_num(&b, v);
		t = jt_take(&b);
		back = strtod(t, NULL);
		if (back != v)
			fail_msg("%.17g printed as %s", v, t);
		free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_object_round_trip),
		cmocka_unit_test(test_invalid_utf8_replaced),
		cmocka_unit_test(test_growth_and_empty),
		cmocka_unit_test(test_dump_exact),
		cmocka_unit_test(test_numbers_short_and_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
