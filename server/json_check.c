/* json_check.c - UTF-8 and repeated keys in a parsed JSON tree. */
#include "json_check.h"

#include "vv/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The length of the valid UTF-8 sequence at s (n > 0 bytes there), or 0 when
 * the bytes there are not one (RFC 3629, table 3-7 of Unicode). */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    int len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c == 0xE0) {
        len = 3;
        lo = 0xA0; /* no overlong form */
    } else if (c == 0xED) {
        len = 3;
        hi = 0x9F; /* no surrogate */
    } else if (c >= 0xE1 && c <= 0xEF) {
        len = 3;
    } else if (c == 0xF0) {
        len = 4;
        lo = 0x90; /* no overlong form */
    } else if (c == 0xF4) {
        len = 4;
        hi = 0x8F; /* nothing above U+10FFFF */
    } else if (c >= 0xF1 && c <= 0xF3) {
        len = 4;
    } else {
        return 0;
    }
    if ((size_t)len > n)
        return 0;
    for (int i = 1; i < len; i++)
        if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF))
            return 0;
    return len;
}

/* The offset of the first byte of s that is not part of valid UTF-8, or -1. */
static long utf8_bad(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        int len = utf8_seq((const unsigned char *)s + i, n - i);
        if (!len)
            return (long)i;
        i += (size_t)len;
    }
    return -1;
}

/* The JSON pointer of the value being checked, built in the caller's field
 * buffer: whole units only, so that a cut pointer is still valid UTF-8. */
typedef struct ptr_buf {
    char *s;
    size_t cap, len;
    int full;
} ptr_buf;

static void ptr_put(ptr_buf *p, const char *bytes, size_t k)
{
    if (p->full || p->len + k >= p->cap) {
        p->full = 1;
        return;
    }
    memcpy(p->s + p->len, bytes, k);
    p->len += k;
    p->s[p->len] = 0;
}

static void ptr_key(ptr_buf *p, const char *key)
{
    ptr_put(p, "/", 1);
    size_t n = strlen(key);
    for (size_t i = 0; i < n;) {
        const unsigned char *c = (const unsigned char *)key + i;
        int len = utf8_seq(c, n - i);
        if (*c == '~') {
            ptr_put(p, "~0", 2);
        } else if (*c == '/') {
            ptr_put(p, "~1", 2);
        } else if (len > 0) {
            ptr_put(p, (const char *)c, (size_t)len);
        } else {
            char esc[8];
            snprintf(esc, sizeof esc, "\\x%02x", *c);
            ptr_put(p, esc, 4);
            len = 1;
        }
        i += (size_t)len;
    }
}

static void ptr_index(ptr_buf *p, int i)
{
    char b[16];
    int k = snprintf(b, sizeof b, "/%d", i);
    ptr_put(p, b, (size_t)k);
}

static void ptr_restore(ptr_buf *p, size_t len, int full)
{
    p->len = len;
    p->full = full;
    if (p->cap)
        p->s[len] = 0;
}

static const char *ptr_name(const ptr_buf *p)
{
    return p->cap && p->s[0] ? p->s : "the document";
}

typedef struct keyed {
    const char *key;
    int index;
} keyed;

static int by_key(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* The index (in document order) of the first member of object o whose key an
 * earlier member already has: *first is -1 when there is none.  Returns 0, or
 * VV_ENOMEM. */
static int first_repeat(const cJSON *o, int *first)
{
    *first = -1;
    int n = 0;
    for (const cJSON *m = o->child; m; m = m->next)
        n++;
    if (n <= 16) {
        int i = 0;
        for (const cJSON *m = o->child; m && *first < 0; m = m->next, i++)
            for (const cJSON *e = o->child; e != m; e = e->next)
                if (m->string && e->string && !strcmp(e->string, m->string)) {
                    *first = i;
                    break;
                }
        return 0;
    }
    /* Many members: sort (key, index) pairs; the second of each run of equal
     * keys is that key's first repeat. */
    keyed *k = malloc((size_t)n * sizeof *k);
    if (!k)
        return vv_fail(VV_ENOMEM, "out of memory checking an object of %d members", n);
    int i = 0;
    for (const cJSON *m = o->child; m; m = m->next, i++)
        k[i] = (keyed){m->string ? m->string : "", i};
    qsort(k, (size_t)n, sizeof *k, by_key);
    for (i = 1; i < n; i++)
        if (!strcmp(k[i].key, k[i - 1].key) && (i < 2 || strcmp(k[i - 1].key, k[i - 2].key)) &&
            (*first < 0 || k[i].index < *first))
            *first = k[i].index;
    free(k);
    return 0;
}

static int check(const cJSON *j, ptr_buf *p)
{
    if ((cJSON_IsString(j) || cJSON_IsRaw(j)) && j->valuestring) {
        long bad = utf8_bad(j->valuestring);
        if (bad >= 0)
            return vv_fail(VV_EJSON,
                           "%s: the string is not valid UTF-8 (byte 0x%02x at offset %ld)",
                           ptr_name(p), (unsigned char)j->valuestring[bad], bad);
        return 0;
    }
    if (!cJSON_IsObject(j) && !cJSON_IsArray(j))
        return 0;
    int repeat = -1, rc;
    if (cJSON_IsObject(j) && (rc = first_repeat(j, &repeat)) < 0)
        return rc;
    size_t len = p->len;
    int full = p->full, i = 0;
    for (const cJSON *m = j->child; m; m = m->next, i++) {
        if (cJSON_IsObject(j)) {
            const char *key = m->string ? m->string : "";
            ptr_key(p, key);
            long bad = utf8_bad(key);
            if (bad >= 0)
                return vv_fail(VV_EJSON,
                               "%s: the key is not valid UTF-8 (byte 0x%02x at offset %ld)",
                               ptr_name(p), (unsigned char)key[bad], bad);
            if (i == repeat)
                return vv_fail(VV_EINVAL, "%s: appears twice", ptr_name(p));
        } else {
            ptr_index(p, i);
        }
        if ((rc = check(m, p)) < 0)
            return rc;
        ptr_restore(p, len, full);
    }
    return 0;
}

int json_check_tree(const cJSON *root, char *field, size_t fsz)
{
    ptr_buf p = {field, field ? fsz : 0, 0, 0};
    if (p.cap)
        field[0] = 0;
    int rc = root ? check(root, &p) : 0;
    if (rc == 0 && p.cap)
        field[0] = 0;
    return rc;
}
