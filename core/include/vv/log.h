/* vv/log.h - greppable logging: "vvd LEVEL subsystem [run] message".
 *
 * Lines go to stderr (stdout carries NDJSON in `vvd run`).  The level is
 * set once by vv_log_set_level (or the VV_LOG environment variable:
 * error, warn, info, debug); logging is thread-safe (one fprintf per line).
 */
#ifndef VV_LOG_H
#define VV_LOG_H

enum { VV_LOG_ERROR = 0, VV_LOG_WARN = 1, VV_LOG_INFO = 2, VV_LOG_DEBUG = 3 };

void vv_log_set_level(int level);
int vv_log_level(void);
void vv_log_write(int level, const char *subsys, const char *run, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define VV_LOG_AT(lvl, subsys, run, ...)                                                 \
    do {                                                                                 \
        if ((lvl) <= vv_log_level())                                                     \
            vv_log_write((lvl), (subsys), (run), __VA_ARGS__);                           \
    } while (0)

#define VV_ERROR(subsys, run, ...) VV_LOG_AT(VV_LOG_ERROR, subsys, run, __VA_ARGS__)
#define VV_WARN(subsys, run, ...) VV_LOG_AT(VV_LOG_WARN, subsys, run, __VA_ARGS__)
#define VV_INFO(subsys, run, ...) VV_LOG_AT(VV_LOG_INFO, subsys, run, __VA_ARGS__)
#define VV_DEBUG(subsys, run, ...) VV_LOG_AT(VV_LOG_DEBUG, subsys, run, __VA_ARGS__)

#endif
