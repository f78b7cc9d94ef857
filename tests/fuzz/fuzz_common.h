/* fuzz_common.h - what every libFuzzer target here shares: CHECK for invariants (abort, so
 * libFuzzer saves the input), and undefined behaviour made fatal. The targets are built
 * with -fsanitize=undefined in its recovering mode, where UBSan only prints and goes on;
 * halt_on_error makes the first report stop the run, so `make fuzz` fails on it. */
#ifndef PACER_FUZZ_COMMON_H
#define PACER_FUZZ_COMMON_H

#include <stdlib.h>

#define CHECK(c) do { if (!(c)) abort(); } while (0)

const char *__ubsan_default_options(void);
const char *__ubsan_default_options(void)
{
	return "halt_on_error=1:print_stacktrace=1";
}

#endif
