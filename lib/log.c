/* log.c - structured log lines on stderr (see log.h). One write() per line so lines from
 * several threads never interleave. */
#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

static const char *log_program = "pacer";
static enum log_level log_min_level = LOG_LVL_INFO;
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_init(const char *program, enum log_level min_level)
{
	log_program = program;
	log_min_level = min_level;
}

int log_level_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[2048], ts[32];
	va_list ap;
	int n;

	if (level < log_min_level)
		return;
	format_iso8601(now_wall(), ts);
	n = snprintf(line, sizeof(line), "ts=%s level=%s prog=%s ", ts, level_names[level],
		     log_program);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}
