/* test_rows.c - vv_rows: chunked reads equal whole reads for every file
 * layout and dtype, NaN/Inf located by row and column, range and open
 * errors, a file shrinking under an open source, bounded resident memory,
 * and callback and memory sources. */
#include "file_util.h"
#include "tap.h"
#include "vv/array.h"
#include "vv/err.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void tp(char *buf, size_t cap, const char *name) { tmp_path(buf, cap, "rows", name); }

/* Writes a .npy file by hand (header padded to 64 bytes) with n bytes of
 * data, in Fortran order when fortran is set. */
static void write_npy(const char *path, const char *descr, int fortran, int64_t r, int64_t c,
                      int ndim, const void *data, size_t n)
{
    char dict[200];
    unsigned char hdr[256];
    if (ndim == 1)
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': (%lld,), }",
                 descr, fortran ? "True" : "False", (long long)r);
    else
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': %s, 'shape': (%lld, %lld), }",
                 descr, fortran ? "True" : "False", (long long)r, (long long)c);
    size_t dl = strlen(dict), total = (10 + dl + 1 + 63) / 64 * 64, hl = total - 10;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (unsigned char)hl;
    hdr[9] = (unsigned char)(hl >> 8);
    memcpy(hdr + 10, dict, dl);
    memset(hdr + 10 + dl, ' ', hl - dl - 1);
    hdr[total - 1] = '\n';
    FILE *f = fopen(path, "wb");
    fwrite(hdr, 1, total, f);
    fwrite(data, 1, n, f);
    fclose(f);
}

/* Writes a .safetensors file by hand with header text json as given. */
static void write_st(const char *path, const char *json, const void *data, size_t n)
{
    uint64_t hl = strlen(json);
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (unsigned char)(hl >> (8 * i));
    FILE *f = fopen(path, "wb");
    fwrite(lenb, 1, 8, f);
    fwrite(json, 1, hl, f);
    fwrite(data, 1, n, f);
    fclose(f);
}

/* The test matrix: m(i, j) = i * 0.5 - j * 3 + 0.25, exact in every dtype. */
static double m(int64_t i, int64_t j)
{
    return (double)i * 0.5 - (double)j * 3 + 0.25;
}

/* Opens path, reads it whole and in chunks of each size in sizes, and
 * compares everything with m (or with ref when given). */
static void check_chunks(const char *tag, const char *path, const char *tensor, int64_t n,
                         int64_t c, vv_dtype dt, const double *ref)
{
    vv_rows *r = NULL;
    int rc = vv_rows_open(path, tensor, &r);
    CHECKF(rc == 0, "%s: open (%s)", tag, rc ? vv_err_detail() : "ok");
    if (rc)
        return;
    CHECKF(vv_rows_n(r) == n && vv_rows_cols(r) == c && vv_rows_dtype(r) == dt &&
               !strcmp(vv_rows_name(r), path),
           "%s: n %lld, cols %lld, dtype %s, name", tag, (long long)vv_rows_n(r),
           (long long)vv_rows_cols(r), vv_dtype_name(vv_rows_dtype(r)));
    double *whole = malloc((size_t)(n * c) * sizeof *whole);
    double *part = malloc((size_t)(n * c) * sizeof *part);
    rc = vv_rows_read(r, 0, n, whole);
    int ok = rc == 0;
    for (int64_t i = 0; ok && i < n; i++)
        for (int64_t j = 0; j < c; j++)
            ok &= whole[i * c + j] == (ref ? ref[i * c + j] : m(i, j));
    CHECKF(ok, "%s: whole read has the right values (%s)", tag, rc ? vv_err_detail() : "ok");
    const int64_t sizes[] = {1, 3, 7, 10, 333, n};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int64_t k = sizes[s];
        memset(part, 0xff, (size_t)(n * c) * sizeof *part);
        ok = 1;
        for (int64_t r0 = 0; ok && r0 < n; r0 += k) {
            int64_t cnt = n - r0 < k ? n - r0 : k;
            ok = vv_rows_read(r, r0, cnt, part + r0 * c) == 0;
        }
        CHECKF(ok && !memcmp(part, whole, (size_t)(n * c) * sizeof *part),
               "%s: chunks of %lld rows equal the whole read", tag, (long long)k);
    }
    /* Backwards after the pages were released, then a middle slice. */
    ok = vv_rows_read(r, n / 2, n - n / 2, part) == 0 &&
         !memcmp(part, whole + (n / 2) * c, (size_t)((n - n / 2) * c) * sizeof *part) &&
         vv_rows_read(r, 0, 1, part) == 0 && !memcmp(part, whole, (size_t)c * sizeof *part);
    CHECKF(ok, "%s: rereading released rows", tag);
    free(whole);
    free(part);
    vv_rows_free(r);
}

static void test_layouts(void)
{
    enum { N = 1003, C = 7 };
    static float cf[N * C], ff[N * C];
    static double cd[N * C], fd[N * C];
    static int64_t ci[N * C];
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++) {
            cf[i * C + j] = (float)m(i, j);
            cd[i * C + j] = m(i, j);
            ff[j * N + i] = (float)m(i, j);
            fd[j * N + i] = m(i, j);
            ci[i * C + j] = (int64_t)(m(i, j) * 4);
        }
    char path[512];
    int64_t shape[2] = {N, C};

    tp(path, sizeof path, "c_f4.npy");
    vv_npy_write(path, VV_F32, 2, shape, cf);
    check_chunks("npy C f32", path, NULL, N, C, VV_F32, NULL);
    unlink(path);
    tp(path, sizeof path, "c_f8.npy");
    vv_npy_write(path, VV_F64, 2, shape, cd);
    check_chunks("npy C f64", path, NULL, N, C, VV_F64, NULL);
    unlink(path);
    tp(path, sizeof path, "f_f4.npy");
    write_npy(path, "<f4", 1, N, C, 2, ff, sizeof ff);
    check_chunks("npy Fortran f32", path, NULL, N, C, VV_F32, NULL);
    unlink(path);
    tp(path, sizeof path, "f_f8.npy");
    write_npy(path, "<f8", 1, N, C, 2, fd, sizeof fd);
    check_chunks("npy Fortran f64", path, NULL, N, C, VV_F64, NULL);
    unlink(path);

    static double ref[N * C];
    for (int i = 0; i < N * C; i++)
        ref[i] = (double)ci[i];
    tp(path, sizeof path, "c_i8.npy");
    vv_npy_write(path, VV_I64, 2, shape, ci);
    check_chunks("npy C i64", path, NULL, N, C, VV_I64, ref);
    unlink(path);
    /* A 1-D array is an n x 1 matrix. */
    tp(path, sizeof path, "v_f8.npy");
    int64_t len = N * C;
    vv_npy_write(path, VV_F64, 1, &len, cd);
    check_chunks("npy 1-D f64", path, NULL, N * C, 1, VV_F64, cd);
    unlink(path);

    /* safetensors, written by vvd */
    tp(path, sizeof path, "mix.safetensors");
    vv_st_tensor t[3] = {
        {"a", VV_F32, 2, {N, C}, cf}, {"b", VV_F64, 2, {N, C}, cd}, {"i", VV_I64, 1, {N * C}, ci}};
    vv_safetensors_write(path, t, 3);
    check_chunks("safetensors F32", path, "a", N, C, VV_F32, NULL);
    check_chunks("safetensors F64", path, "b", N, C, VV_F64, NULL);
    check_chunks("safetensors I64 1-D", path, "i", N * C, 1, VV_I64, ref);
    unlink(path);

    /* safetensors F16 and BF16 built by hand: m(i, j) is exact in both for
     * small i; the header is 1 byte off alignment, so the data is not. */
    enum { HN = 101, HC = 5 };
    static uint16_t h16[HN * HC], b16[HN * HC];
    static double href[HN * HC];
    for (int i = 0; i < HN; i++)
        for (int j = 0; j < HC; j++) {
            double v = m(i, j) * 2; /* a multiple of 0.5 below 128 */
            href[i * HC + j] = v;
            float f = (float)v;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            b16[i * HC + j] = (uint16_t)(bits >> 16);
            /* half: sign, exponent rebias 127 -> 15, top 10 mantissa bits */
            uint16_t s = (uint16_t)((bits >> 16) & 0x8000);
            int e = (int)((bits >> 23) & 0xff);
            h16[i * HC + j] = v == 0 ? s
                                     : (uint16_t)(s | (uint16_t)((e - 112) << 10) |
                                                  (uint16_t)((bits >> 13) & 0x3ff));
        }
    static uint16_t both[2 * HN * HC];
    memcpy(both, h16, sizeof h16);
    memcpy(both + HN * HC, b16, sizeof b16);
    char json[256];
    snprintf(json, sizeof json,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[%d,%d],\"data_offsets\":[%d,%d]}} ",
             HN, HC, 2 * HN * HC, HN, HC, 2 * HN * HC, 4 * HN * HC);
    if (strlen(json) % 2 == 0)
        strcat(json, " ");
    tp(path, sizeof path, "half.safetensors");
    write_st(path, json, both, sizeof both);
    check_chunks("safetensors F16 (unaligned)", path, "h", HN, HC, VV_F16, href);
    check_chunks("safetensors BF16 (unaligned)", path, "b", HN, HC, VV_BF16, href);
    unlink(path);

    /* numpy's own Fortran-order file */
    snprintf(path, sizeof path, "%s/arrays/fortran_f8.npy", VV_FIXTURES);
    double fx[15];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 5; j++)
            fx[i * 5 + j] = 100.0 * i + j + 0.25;
    check_chunks("numpy Fortran fixture", path, NULL, 3, 5, VV_F64, fx);
}

static void expect_nonfinite(const char *tag, vv_rows *r, int64_t r0, int64_t k, const char *msg)
{
    double *dst = malloc((size_t)(k * vv_rows_cols(r)) * sizeof *dst);
    int rc = vv_rows_read(r, r0, k, dst);
    const char *d = vv_err_detail();
    CHECKF(rc == VV_ENONFINITE && strstr(d, vv_rows_name(r)) && strstr(d, msg), "%s: %s (%s: %s)",
           tag, msg, vv_err_name(rc), d);
    free(dst);
}

static void test_nonfinite(void)
{
    enum { N = 200, C = 10 };
    static float f[N * C], ff[N * C];
    static double d[N * C];
    for (int i = 0; i < N * C; i++)
        f[i] = (float)i, d[i] = i;
    f[123 * C + 7] = NAN;
    f[150 * C + 1] = INFINITY;
    d[5 * C + 2] = -INFINITY;
    d[N * C - 1] = NAN; /* in the loop's scalar tail */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < C; j++)
            ff[j * N + i] = f[i * C + j];
    char path[512];
    int64_t shape[2] = {N, C};
    vv_rows *r;

    tp(path, sizeof path, "nan.npy");
    vv_npy_write(path, VV_F32, 2, shape, f);
    vv_rows_open(path, NULL, &r);
    expect_nonfinite("f32 whole", r, 0, N, "NaN at row 123, column 7");
    expect_nonfinite("f32 chunk", r, 100, 30, "NaN at row 123, column 7");
    expect_nonfinite("f32 later chunk", r, 124, 50, "Inf at row 150, column 1");
    double buf[100 * C];
    CHECK(vv_rows_read(r, 0, 100, buf) == 0 && buf[99 * C + 9] == 999, "f32 clean rows read");
    expect_nonfinite("f32 single row", r, 123, 1, "NaN at row 123, column 7");
    vv_rows_free(r);
    unlink(path);

    tp(path, sizeof path, "nan_f.npy");
    write_npy(path, "<f4", 1, N, C, 2, ff, sizeof ff);
    vv_rows_open(path, NULL, &r);
    expect_nonfinite("Fortran f32", r, 0, N, "NaN at row 123, column 7");
    expect_nonfinite("Fortran f32 chunk", r, 130, 70, "Inf at row 150, column 1");
    vv_rows_free(r);
    unlink(path);

    tp(path, sizeof path, "inf.safetensors");
    vv_st_tensor t = {"x", VV_F64, 2, {N, C}, d};
    vv_safetensors_write(path, &t, 1);
    vv_rows_open(path, NULL, &r);
    expect_nonfinite("f64", r, 0, N, "Inf at row 5, column 2");
    expect_nonfinite("f64 tail", r, 6, N - 6, "NaN at row 199, column 9");
    vv_rows_free(r);
    unlink(path);

    uint16_t h[4] = {0x3C00, 0x3C00, 0x7C00, 0x7E00};
    tp(path, sizeof path, "inf16.safetensors");
    write_st(path, "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}", h,
             sizeof h);
    vv_rows_open(path, "h", &r);
    expect_nonfinite("F16", r, 0, 2, "Inf at row 1, column 0");
    vv_rows_free(r);
    unlink(path);

    vv_rows_from_memory("mem", N, C, d, &r);
    expect_nonfinite("memory", r, 0, N, "Inf at row 5, column 2");
    vv_rows_free(r);
}

/* vv_rows_open must fail with code, leave *out NULL and name the file and
 * word in the detail. */
static void expect_open(const char *tag, const char *path, const char *tensor, int code,
                        const char *word)
{
    vv_rows *r = (vv_rows *)&r;
    int rc = vv_rows_open(path, tensor, &r);
    const char *d = vv_err_detail();
    CHECKF(rc == code && r == NULL && strstr(d, path) && strstr(d, word), "%s: %s, '%s' (%s)", tag,
           vv_err_name(code), word, d);
}

static void test_errors(void)
{
    char path[512];
    vv_rows *r;
    double v[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {3, 2};

    tp(path, sizeof path, "missing.npy");
    expect_open("missing file", path, NULL, VV_ENOFILE, "no such file");
    tp(path, sizeof path, "dir.npy");
    mkdir(path, 0755);
    expect_open("directory", path, NULL, VV_EIO, "Is a directory");
    rmdir(path);
    tp(path, sizeof path, "png.npy");
    FILE *f = fopen(path, "wb");
    fwrite("\x89PNG\r\n\x1a\n....", 1, 12, f);
    fclose(f);
    expect_open("unknown magic", path, NULL, VV_EFORMAT,
                "not a .npy or .safetensors file (magic 89 50 4e 47 0d 0a 1a 0a)");
    fclose(fopen(path, "wb"));
    expect_open("empty file", path, NULL, VV_EFORMAT, "empty");
    unlink(path);

    tp(path, sizeof path, "ok.npy");
    vv_npy_write(path, VV_F64, 2, shape, v);
    expect_open("tensor for .npy", path, "x", VV_EINVAL, "tensor");
    write_npy(path, "<f8", 0, 3, 2, 2, v, 40);
    expect_open("truncated .npy", path, NULL, VV_EFORMAT, "truncated");
    write_npy(path, "<i4", 0, 3, 2, 2, v, 24);
    expect_open("int32 .npy", path, NULL, VV_EDTYPE, "'<i4'");
    unlink(path);

    tp(path, sizeof path, "two.safetensors");
    vv_st_tensor t[2] = {{"a", VV_F64, 2, {3, 2}, v}, {"b", VV_F64, 3, {1, 1, 2}, v}};
    vv_safetensors_write(path, t, 2);
    expect_open("several tensors, no name", path, NULL, VV_EINVAL, "name one of: a, b");
    expect_open("unknown tensor", path, "c", VV_EINVAL, "no tensor named 'c' (has: a, b)");
    expect_open("3-D tensor", path, "b", VV_ESHAPE, "3-D");
    int rc = vv_rows_open(path, "a", &r);
    CHECK(rc == 0, "named tensor opens");

    /* Ranges */
    double dst[6];
    const int64_t bad[][2] = {{-1, 1}, {0, -1},        {0, 4},         {3, 1},
                              {4, 0},  {2, INT64_MAX}, {INT64_MAX, 1}, {INT64_MIN, 2}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = vv_rows_read(r, bad[i][0], bad[i][1], dst);
        CHECKF(rc == VV_EINVAL && strstr(vv_err_detail(), path) &&
                   strstr(vv_err_detail(), "out of range"),
               "rows %lld + %lld: EINVAL (%s)", (long long)bad[i][0], (long long)bad[i][1],
               vv_err_detail());
    }
    CHECK(vv_rows_read(r, 3, 0, NULL) == 0, "zero rows at the end: ok");
    CHECK(vv_rows_read(r, 2, 1, dst) == 0 && dst[0] == 5 && dst[1] == 6, "last row");
    CHECK(vv_rows_read(r, 0, 1, NULL) == VV_EINVAL, "NULL dst: EINVAL");

    /* The file shrinks under the mapping: VV_EIO, not SIGBUS. */
    CHECK(truncate(path, 16) == 0, "truncate the open file");
    rc = vv_rows_read(r, 0, 3, dst);
    CHECKF(rc == VV_EIO && strstr(vv_err_detail(), path) && strstr(vv_err_detail(), "shrank"),
           "shrunk file: EIO (%s)", vv_err_detail());
    vv_rows_free(r);
    unlink(path);
    vv_rows_free(NULL);
    CHECK(vv_rows_open(NULL, NULL, &r) == VV_EINVAL, "NULL path: EINVAL");
}

static long rss_file_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssFile: %ld", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* Resident file pages stay bounded (vv_rows releases them in batches of
 * 16 MiB) while streaming a file much larger than that, in both orders. */
static void test_bounded_memory(void)
{
    enum { N = 4 << 20, C = 4 }; /* 64 MiB of float32 */
    if (rss_file_kb() < 0) {
        CHECK(1, "# SKIP no RssFile in /proc/self/status");
        return;
    }
    float *data = malloc((size_t)N * C * sizeof *data);
    for (size_t i = 0; i < (size_t)N * C; i++)
        data[i] = (float)(i % 1000);
    double *dst = malloc(65536 * C * sizeof *dst);
    for (int fortran = 0; fortran < 2; fortran++) {
        char path[512];
        tp(path, sizeof path, "big.npy");
        write_npy(path, "<f4", fortran, N, C, 2, data, (size_t)N * C * sizeof *data);
        vv_rows *r;
        long base = rss_file_kb(), peak = 0;
        int ok = vv_rows_open(path, NULL, &r) == 0;
        for (int64_t r0 = 0; ok && r0 < N; r0 += 65536) {
            ok = vv_rows_read(r, r0, 65536, dst) == 0;
            long now = rss_file_kb() - base;
            peak = now > peak ? now : peak;
        }
        CHECKF(ok, "%s: streamed 64 MiB", fortran ? "Fortran" : "C");
        CHECKF(peak < 40 * 1024, "%s: file pages resident at most %ld KiB (< 40 MiB)",
               fortran ? "Fortran" : "C", peak);
        vv_rows_free(r);
        unlink(path);
    }
    free(dst);
    free(data);
}

/* Callback and memory sources */
typedef struct {
    int64_t cols;
    int calls;
    int *freed;
} gen_ctx;

static int gen_read(void *ctx, int64_t r0, int64_t nrows, double *dst)
{
    gen_ctx *g = ctx;
    g->calls++;
    if (r0 == 13)
        return vv_fail(VV_ENUMERIC, "gen: row 13 is unlucky");
    for (int64_t i = 0; i < nrows; i++)
        for (int64_t j = 0; j < g->cols; j++)
            dst[i * g->cols + j] = m(r0 + i, j);
    return 0;
}

static void gen_free(void *ctx)
{
    gen_ctx *g = ctx;
    (*g->freed)++;
    free(g);
}

static void test_sources(void)
{
    int freed = 0;
    gen_ctx *g = malloc(sizeof *g);
    *g = (gen_ctx){4, 0, &freed};
    char name[32] = "synthetic";
    vv_rows *r;
    int rc = vv_rows_from_callback(name, 20, 4, gen_read, g, gen_free, &r);
    name[0] = 'X';
    CHECK(rc == 0 && vv_rows_n(r) == 20 && vv_rows_cols(r) == 4 && vv_rows_dtype(r) == VV_F64 &&
              !strcmp(vv_rows_name(r), "synthetic"),
          "callback: shape, dtype, name copied");
    double dst[80];
    CHECK(vv_rows_read(r, 2, 5, dst) == 0 && dst[0] == m(2, 0) && dst[19] == m(6, 3),
          "callback: values");
    rc = vv_rows_read(r, 13, 1, dst);
    CHECK(rc == VV_ENUMERIC && strstr(vv_err_detail(), "unlucky"),
          "callback: its error comes through");
    int calls = g->calls;
    CHECK(vv_rows_read(r, 19, 2, dst) == VV_EINVAL && g->calls == calls,
          "callback: range checked before calling");
    vv_rows_free(r);
    CHECK(freed == 1, "callback: free_ctx called once");
    CHECK(vv_rows_from_callback("x", 1, 1, NULL, NULL, NULL, &r) == VV_EINVAL && r == NULL,
          "callback: NULL read is EINVAL");
    CHECK(vv_rows_from_callback("x", -1, 1, gen_read, NULL, NULL, &r) == VV_EINVAL,
          "callback: negative n is EINVAL");
    CHECK(vv_rows_from_callback("x", INT64_MAX, 4, gen_read, NULL, NULL, &r) == VV_EINVAL,
          "callback: overflowing size is EINVAL");

    double mem[12];
    for (int i = 0; i < 12; i++)
        mem[i] = i;
    CHECK(vv_rows_from_memory("mem", 4, 3, mem, &r) == 0 && vv_rows_dtype(r) == VV_F64,
          "memory: created");
    CHECK(vv_rows_read(r, 1, 3, dst) == 0 && dst[0] == 3 && dst[8] == 11, "memory: values");
    CHECK(vv_rows_read(r, 1, 4, dst) == VV_EINVAL && strstr(vv_err_detail(), "mem"),
          "memory: range error names the source");
    vv_rows_free(r);
    CHECK(vv_rows_from_memory("mem", 4, 3, NULL, &r) == VV_EINVAL, "memory: NULL data is EINVAL");
    CHECK(vv_rows_from_memory("mem", 0, 3, NULL, &r) == 0 && vv_rows_read(r, 0, 0, dst) == 0,
          "memory: empty matrix");
    vv_rows_free(r);
}

int main(void)
{
    const char *t = getenv("VV_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", t && *t ? t : "/tmp");
    test_layouts();
    test_nonfinite();
    test_errors();
    test_bounded_memory();
    test_sources();
    return tap_done();
}
