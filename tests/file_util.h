/* tests/file_util.h - temporary files for the array tests. */
#ifndef VV_TEST_FILE_UTIL_H
#define VV_TEST_FILE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef VV_FIXTURES
#define VV_FIXTURES "tests/fixtures"
#endif

/* The folder of temporary files (VV_TEST_TMP, or /tmp); set by the test. */
static char tmpdir[256];

/* A per-process temporary path: TMP/vv_<prefix>_<pid>_<name>. */
static inline void tmp_path(char *buf, size_t cap, const char *prefix, const char *name)
{
    snprintf(buf, cap, "%s/vv_%s_%d_%s", tmpdir, prefix, (int)getpid(), name);
}

static inline int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(p, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

/* The whole file (malloc'd) and its size, or NULL. */
static inline unsigned char *slurp(const char *path, size_t *n)
{
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(len > 0 ? (size_t)len : 1);
    if (p && fread(p, 1, (size_t)len, f) != (size_t)len) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return p;
}

#endif
