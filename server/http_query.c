/* http_query.c - integers from query parameters and headers. */
#include "http_util.h"

#include "vv/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

/* Parses s as a decimal integer in [lo, hi]: an optional '-' and digits, all
 * of s and nothing else (no white space, no '+', no empty string).  Returns
 * 0 with *out set, or VV_EINVAL with a detail naming what. */
static int parse_int(const char *what, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    const char *d = s[0] == '-' ? s + 1 : s;
    if (*d < '0' || *d > '9')
        return vv_fail(VV_EINVAL, "%s: an integer from %" PRId64 " to %" PRId64 ", got '%.40s'",
                       what, lo, hi, s);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end)
        return vv_fail(VV_EINVAL, "%s: an integer from %" PRId64 " to %" PRId64 ", got '%.40s'",
                       what, lo, hi, s);
    if (errno == ERANGE || v < lo || v > hi)
        return vv_fail(VV_EINVAL, "%s: %.40s is out of range (%" PRId64 " to %" PRId64 ")", what, s,
                       lo, hi);
    *out = (int64_t)v;
    return 0;
}

int query_int(req *r, const char *name, int64_t lo, int64_t hi, int64_t def, int64_t *out)
{
    const char *s = query(r, name);
    if (!s) {
        *out = def;
        return 0;
    }
    return parse_int(name, s, lo, hi, out);
}

int header_int(req *r, const char *name, int64_t lo, int64_t hi, int64_t def, int64_t *out)
{
    const char *s = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
    if (!s) {
        *out = def;
        return 0;
    }
    return parse_int(name, s, lo, hi, out);
}
