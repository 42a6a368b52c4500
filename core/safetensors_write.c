/* safetensors_write.c - the .safetensors writer (vv/array.h): the header
 * written by hand, so that it needs no JSON library (tests/gpu's device
 * check builds it on machines without libcjson; safetensors.c reads). */
#include "array_internal.h"
#include "vv/array.h"
#include "vv/err.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_INT 9007199254740992.0 /* 2^53: larger JSON numbers are inexact */

/* A growing string; oom is sticky. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_add(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Appends s as a JSON string literal. */
static void sb_json_str(sbuf *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            sb_add(b, esc, 2);
        } else if (*p < 0x20) {
            sb_printf(b, "\\u%04x", *p);
        } else {
            sb_add(b, (const char *)p, 1);
        }
    }
    sb_add(b, "\"", 1);
}

static int check_tensor(const char *path, const vv_st_tensor *t, const vv_st_tensor *all, int i,
                        uint64_t *nbytes)
{
    if (!t->name || !t->name[0] || !strcmp(t->name, "__metadata__"))
        return vv_fail(VV_EINVAL, "%s: tensor %d has an empty or reserved name", path, i);
    for (int j = 0; j < i; j++)
        if (!strcmp(all[j].name, t->name))
            return vv_fail(VV_EINVAL, "%s: tensor name '%s' is given twice", path, t->name);
    if (t->dtype != VV_F32 && t->dtype != VV_F64 && t->dtype != VV_I64)
        return vv_fail(VV_EDTYPE, "%s: tensor '%s': cannot write dtype %s (need F32, F64 or I64)",
                       path, t->name, vv_dtype_name(t->dtype));
    if (t->ndim < 1 || t->ndim > 4)
        return vv_fail(VV_ESHAPE, "%s: tensor '%s': ndim %d is not in 1..4", path, t->name,
                       t->ndim);
    uint64_t n = vv_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] < 0 || __builtin_mul_overflow(n, (uint64_t)t->shape[d], &n) ||
            n > (uint64_t)ST_MAX_INT)
            return vv_fail(VV_ESHAPE, "%s: tensor '%s': invalid or too large shape", path, t->name);
    if (!t->data && n)
        return vv_fail(VV_EINVAL, "%s: tensor '%s': data is NULL", path, t->name);
    *nbytes = n;
    return 0;
}

int vv_safetensors_write(const char *path, const vv_st_tensor *tensors, int n)
{
    int rc;
    if (!path)
        return vv_fail(VV_EINVAL, "vv_safetensors_write: path is NULL");
    if (n < 0 || (n > 0 && !tensors))
        return vv_fail(VV_EINVAL, "%s: invalid tensor list", path);

    vv__piece *pieces = calloc((size_t)n + 2, sizeof *pieces);
    sbuf b = {0};
    if (!pieces)
        return vv_fail(VV_ENOMEM, "%s: out of memory", path);
    static const char meta[] = "{\"__metadata__\":{\"format\":\"pt\"}";
    sb_add(&b, meta, sizeof meta - 1);
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const vv_st_tensor *t = &tensors[i];
        uint64_t nbytes = 0;
        if ((rc = check_tensor(path, t, tensors, i, &nbytes)) < 0)
            goto done;
        sb_add(&b, ",", 1);
        sb_json_str(&b, t->name);
        sb_printf(&b, ":{\"dtype\":\"%s\",\"shape\":[",
                  t->dtype == VV_F32   ? "F32"
                  : t->dtype == VV_F64 ? "F64"
                                       : "I64");
        for (int d = 0; d < t->ndim; d++)
            sb_printf(&b, "%s%" PRId64, d ? "," : "", t->shape[d]);
        sb_printf(&b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + nbytes);
        off += nbytes;
        pieces[i + 2].data = t->data;
        pieces[i + 2].len = (size_t)nbytes;
    }
    sb_add(&b, "}", 1);
    while (!b.oom && b.len % 8)
        sb_add(&b, " ", 1);
    if (b.oom) {
        rc = vv_fail(VV_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)((uint64_t)b.len >> (8 * i));
    pieces[0].data = lenb;
    pieces[0].len = 8;
    pieces[1].data = b.p;
    pieces[1].len = b.len;
    rc = vv__write_atomic(path, pieces, n + 2);
done:
    free(b.p);
    free(pieces);
    return rc;
}
