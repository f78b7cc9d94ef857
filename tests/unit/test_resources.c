/* test_resources.c - port range arithmetic and the text/JSON forms of resources. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "lib/resources.h"

static void ranges_text(const struct port_ranges *p, char *buf, size_t len)
{
	assert_int_equal(port_ranges_format(p, buf, len), 0);
}

static void test_parse_merges_and_sorts(void **state)
{
	struct port_ranges p;
	char buf[128];

	(void)state;
	port_ranges_init(&p);
	assert_int_equal(port_ranges_parse("[33000-33010, 31000-32000,32001-32005,80]", &p), 0);
	ranges_text(&p, buf, sizeof(buf));
	assert_string_equal(buf, "[80-80,31000-32005,33000-33010]");
	assert_int_equal(port_ranges_count(&p), 1 + 1006 + 11);
	port_ranges_free(&p);
}

static void test_parse_rejects_garbage(void **state)
{
	const char *bad[] = { "31000-32000", "[31000-]", "[a-b]", "[32000-31000]", "[70000]",
			      "[1,2", "[1-2]x", "" };
	struct port_ranges p;

	(void)state;
	port_ranges_init(&p);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(port_ranges_parse(bad[i], &p), -22);
	assert_int_equal(p.count, 0);
}

static void test_subtract_splits_ranges(void **state)
{
	struct port_ranges a, b;
	char buf[128];

	(void)state;
	port_ranges_init(&a);
	port_ranges_init(&b);
	assert_int_equal(port_ranges_parse("[31000-31010]", &a), 0);
	assert_int_equal(port_ranges_parse("[31000,31005-31006,31010,40000]", &b), 0);
	assert_int_equal(port_ranges_subtract(&a, &b), 0);
	ranges_text(&a, buf, sizeof(buf));
	assert_string_equal(buf, "[31001-31004,31007-31009]");
	assert_true(port_ranges_contains_port(&a, 31008));
	assert_false(port_ranges_contains_port(&a, 31005));
	/* add back what was taken: the original range again */
	assert_int_equal(port_ranges_add(&a, &b), 0);
	ranges_text(&a, buf, sizeof(buf));
	assert_string_equal(buf, "[31000-31010,40000-40000]");
	port_ranges_free(&a);
	port_ranges_free(&b);
}

static void test_pick_and_contains(void **state)
{
	struct port_ranges a, need;
	uint32_t ports[4];

	(void)state;
	port_ranges_init(&a);
	port_ranges_init(&need);
	assert_int_equal(port_ranges_parse("[10-11,20-30]", &a), 0);
	assert_int_equal(port_ranges_pick(&a, 4, ports), 0);
	assert_int_equal(ports[0], 10);
	assert_int_equal(ports[1], 11);
	assert_int_equal(ports[2], 20);
	assert_int_equal(ports[3], 21);
	assert_int_equal(port_ranges_parse("[10-11]", &need), 0);
	assert_true(port_ranges_contains(&a, &need));
	assert_int_equal(port_ranges_parse("[11-12]", &need), 0);
	assert_false(port_ranges_contains(&a, &need));
	assert_int_equal(port_ranges_parse("[1-3]", &a), 0);
	assert_int_equal(port_ranges_pick(&a, 4, ports), -28);
	port_ranges_free(&a);
	port_ranges_free(&need);
}

static void test_resources_text_form(void **state)
{
	struct resources r, need;
	char err[256] = "";

	(void)state;
	resources_init(&r);
	resources_init(&need);
	assert_int_equal(resources_parse("cpus:2;mem:4096;disk:20000;ports:[31000-32000]", &r,
					 err, sizeof(err)), 0);
	assert_true(r.cpus == 2 && r.mem == 4096 && r.disk == 20000);
	assert_int_equal(port_ranges_count(&r.ports), 1001);
	assert_int_equal(resources_parse("cpus:0.5;mem:128;ports:[31000-31001]", &need, err,
					 sizeof(err)), 0);
	assert_true(resources_contains(&r, &need));
	assert_int_equal(resources_subtract(&r, &need), 0);
	assert_true(r.cpus > 1.49 && r.cpus < 1.51);
	assert_false(resources_contains(&r, &need)); /* its ports are gone now */
	assert_int_equal(resources_parse("cpus:-1", &r, err, sizeof(err)), -22);
	assert_non_null(strstr(err, "cpus"));
	assert_int_equal(resources_parse("gpus:1", &r, err, sizeof(err)), -22);
	assert_non_null(strstr(err, "gpus"));
	assert_int_equal(resources_parse("ports:31000", &r, err, sizeof(err)), -22);
	assert_non_null(strstr(err, "ports"));
	resources_free(&r);
	resources_free(&need);
}

static void test_resources_json_round_trip(void **state)
{
	struct resources r, back;
	char err[256];
	json_t *j;

	(void)state;
	resources_init(&r);
	resources_init(&back);
	assert_int_equal(resources_parse("cpus:1.5;mem:64;disk:10;ports:[1-2,5-5]", &r, err,
					 sizeof(err)), 0);
	j = resources_to_json(&r);
	assert_int_equal(resources_from_json(j, &back, err, sizeof(err)), 0);
	assert_true(back.cpus == 1.5 && back.mem == 64 && back.disk == 10);
	assert_int_equal(back.ports.count, 2);
	assert_int_equal(back.ports.ranges[1].begin, 5);
	json_decref(j);
	j = json_loads("{\"cpus\":1,\"ports\":[[5,1]]}", 0, NULL);
	assert_int_equal(resources_from_json(j, &back, err, sizeof(err)), -22);
	json_decref(j);
	resources_free(&r);
	resources_free(&back);
}

static void test_attributes(void **state)
{
	char err[128];
	json_t *a;

	(void)state;
	a = attributes_parse("rack:a;zone:1", err, sizeof(err));
	assert_non_null(a);
	assert_string_equal(json_string_value(json_object_get(a, "rack")), "a");
	assert_string_equal(json_string_value(json_object_get(a, "zone")), "1");
	json_decref(a);
	assert_null(attributes_parse("rack", err, sizeof(err)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_merges_and_sorts),
		cmocka_unit_test(test_parse_rejects_garbage),
		cmocka_unit_test(test_subtract_splits_ranges),
		cmocka_unit_test(test_pick_and_contains),
		cmocka_unit_test(test_resources_text_form),
		cmocka_unit_test(test_resources_json_round_trip),
		cmocka_unit_test(test_attributes),
	};

	return cmocka_run_group_tests_name("resources", tests, NULL, NULL);
}
