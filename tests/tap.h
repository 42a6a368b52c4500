/* tests/tap.h - a tiny TAP producer for the C tests.
 *
 * Each CHECK is one TAP test point ("ok N - what" / "not ok N - what").
 * tap_done() prints the plan and returns the exit status (0 when every
 * check passed).  A test binary that must skip calls tap_skip_all(), which
 * prints "1..0 # SKIP why" and exits 77 (meson's skip code).
 */
#ifndef VV_TAP_H
#define VV_TAP_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed;

static inline int tap_check(int ok, const char *file, int line, const char *what)
{
    tap_n++;
    if (!ok)
        tap_failed++;
    printf("%s %d - %s", ok ? "ok" : "not ok", tap_n, what);
    if (!ok)
        printf(" (%s:%d)", file, line);
    printf("\n");
    fflush(stdout);
    return ok;
}

#define CHECK(cond, what) tap_check(!!(cond), __FILE__, __LINE__, (what))

/* A check with a formatted description. */
#define CHECKF(cond, ...)                                                                \
    do {                                                                                 \
        char tap_buf_[512];                                                              \
        snprintf(tap_buf_, sizeof tap_buf_, __VA_ARGS__);                                \
        tap_check(!!(cond), __FILE__, __LINE__, tap_buf_);                               \
    } while (0)

/* |a - b| <= tol * max(1, |b|) */
static inline int tap_close(double a, double b, double tol)
{
    double s = fabs(b) > 1 ? fabs(b) : 1;
    return fabs(a - b) <= tol * s && !isnan(a);
}

/* max |a - b| / max |b| over n floats (1 in place of a zero max |b|); a
 * NaN difference makes it NaN, which fails every "<" check. */
static inline double rel_err(const float *a, const float *b, int64_t n)
{
    double d = 0, s = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        d = e > d || isnan(e) ? e : d;
        s = fabs(b[i]) > s ? fabs(b[i]) : s;
    }
    return d / (s > 0 ? s : 1);
}

static inline int tap_done(void)
{
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}

static inline void tap_skip_all(const char *why)
{
    printf("1..0 # SKIP %s\n", why);
    exit(77);
}

#endif
