/* log.c - the logging sink. */
#include "vv/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int level = -1;

void vv_log_set_level(int l) { level = l; }

int vv_log_level(void)
{
    if (level < 0) {
        const char *e = getenv("VV_LOG");
        level = VV_LOG_INFO;
        if (e) {
            if (!strcmp(e, "error"))
                level = VV_LOG_ERROR;
            else if (!strcmp(e, "warn"))
                level = VV_LOG_WARN;
            else if (!strcmp(e, "debug"))
                level = VV_LOG_DEBUG;
        }
    }
    return level;
}

void vv_log_write(int lvl, const char *subsys, const char *run, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ vvd %s %s%s%s%s %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            names[lvl < 0 ? 0 : lvl > 3 ? 3 : lvl], subsys, run ? " [" : "", run ? run : "",
            run ? "]" : "", msg);
}
