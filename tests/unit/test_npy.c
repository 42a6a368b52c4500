/* test_npy.c - .npy reading and writing: round trips, hand-built headers
 * (Fortran order, versions 2.0 and 3.0), every malformed case, truncation
 * at every byte, and files written by numpy itself. */
#include "file_util.h"
#include "tap.h"
#include "vv/array.h"
#include "vv/err.h"

#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void tp(char *buf, size_t cap, const char *name) { tmp_path(buf, cap, "npy", name); }

/* Builds a .npy file by hand: version major.0, the given dict text padded
 * with spaces so the data starts at a multiple of 16, then '\n' and data. */
static size_t build_npy(unsigned char *out, int major, const char *dict, const void *data, size_t n)
{
    size_t lenb = major == 1 ? 2 : 4, pre = 8 + lenb;
    size_t dl = strlen(dict);
    size_t total = (pre + dl + 1 + 15) / 16 * 16;
    size_t hlen = total - pre;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t i = 0; i < lenb; i++)
        out[8 + i] = (unsigned char)(hlen >> (8 * i));
    memcpy(out + pre, dict, dl);
    memset(out + pre + dl, ' ', hlen - dl - 1);
    out[total - 1] = '\n';
    if (n)
        memcpy(out + total, data, n);
    return total + n;
}

/* Writes a hand-built file and checks that vv_npy_read fails with code and
 * a detail naming the file and containing word. */
static void expect_fail_bytes(const char *tag, const void *bytes, size_t n, int code,
                              const char *word)
{
    char path[512];
    tp(path, sizeof path, tag);
    write_bytes(path, bytes, n);
    vv_array a;
    memset(&a, 0xab, sizeof a);
    int rc = vv_npy_read(path, &a);
    const char *d = vv_err_detail();
    CHECKF(rc == code, "%s: code %s (want %s)", tag, vv_err_name(rc), vv_err_name(code));
    CHECKF(strstr(d, path) && strstr(d, word), "%s: detail names file and '%s': %s", tag, word, d);
    CHECKF(a.data == NULL && a.ndim == 0, "%s: out zeroed", tag);
    unlink(path);
}

static void expect_fail_dict(const char *tag, const char *dict, size_t ndata, int code,
                             const char *word)
{
    unsigned char buf[1024];
    unsigned char zeros[256] = {0};
    size_t n = build_npy(buf, 1, dict, zeros, ndata);
    expect_fail_bytes(tag, buf, n, code, word);
}

static void test_round_trips(void)
{
    float f32[6] = {1.5f, -2.25f, 3e30f, -0.0f, 1e-40f, 7};
    double f64[6] = {1.0 / 3, -2.5e300, 5e-324, 0, 42, -1};
    int64_t i64[6] = {INT64_MIN, -1, 0, 1, INT64_MAX, 1234567890123LL};
    const void *datas[3] = {f32, f64, i64};
    vv_dtype types[3] = {VV_F32, VV_F64, VV_I64};
    for (int t = 0; t < 3; t++)
        for (int nd = 1; nd <= 2; nd++) {
            char path[512], tag[64];
            snprintf(tag, sizeof tag, "rt_%s_%dd.npy", vv_dtype_name(types[t]), nd);
            tp(path, sizeof path, tag);
            int64_t shape[2] = {nd == 1 ? 6 : 2, 3};
            int rc = vv_npy_write(path, types[t], nd, shape, datas[t]);
            CHECKF(rc == 0, "%s: write (%s)", tag, vv_err_detail());
            vv_array a;
            rc = vv_npy_read(path, &a);
            CHECKF(rc == 0, "%s: read (%s)", tag, vv_err_detail());
            CHECKF(a.dtype == types[t] && a.ndim == nd && a.shape[0] == shape[0] &&
                       a.shape[1] == (nd == 2 ? 3 : 1),
                   "%s: dtype and shape kept", tag);
            CHECKF(a.data && !memcmp(a.data, datas[t], 6 * vv_dtype_size(types[t])),
                   "%s: values bit-exact", tag);
            vv_array_free(&a);
            CHECKF(a.data == NULL && a.ndim == 0, "%s: vv_array_free zeroes", tag);

            /* The layout numpy uses: version 1.0, data at a multiple of 64. */
            size_t n;
            unsigned char *raw = slurp(path, &n);
            size_t hlen = raw ? raw[8] | (size_t)raw[9] << 8 : 0;
            CHECKF(raw && raw[6] == 1 && raw[7] == 0 && (10 + hlen) % 64 == 0 &&
                       raw[10 + hlen - 1] == '\n' && n == 10 + hlen + 6 * vv_dtype_size(types[t]),
                   "%s: version 1.0, 64-byte aligned data, newline-terminated header", tag);
            free(raw);
            char tmp[600];
            snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
            CHECKF(access(tmp, F_OK) != 0, "%s: no temporary file left", tag);
            unlink(path);
        }

    /* An empty array round-trips too. */
    char path[512];
    tp(path, sizeof path, "empty.npy");
    int64_t shape[2] = {0, 5};
    CHECK(vv_npy_write(path, VV_F64, 2, shape, NULL) == 0, "empty: write 0x5");
    vv_array a;
    CHECK(vv_npy_read(path, &a) == 0 && a.shape[0] == 0 && a.shape[1] == 5, "empty: read 0x5");
    vv_array_free(&a);
    unlink(path);
    vv_array_free(NULL);
    CHECK(1, "vv_array_free(NULL) is a no-op");
}

static void test_dtype_helpers(void)
{
    CHECK(vv_dtype_size(VV_F32) == 4 && vv_dtype_size(VV_F64) == 8 && vv_dtype_size(VV_F16) == 2 &&
              vv_dtype_size(VV_BF16) == 2 && vv_dtype_size(VV_I64) == 8 &&
              vv_dtype_size((vv_dtype)99) == 0,
          "vv_dtype_size");
    CHECK(!strcmp(vv_dtype_name(VV_F32), "float32") && !strcmp(vv_dtype_name(VV_F64), "float64") &&
              !strcmp(vv_dtype_name(VV_F16), "float16") &&
              !strcmp(vv_dtype_name(VV_BF16), "bfloat16") &&
              !strcmp(vv_dtype_name(VV_I64), "int64"),
          "vv_dtype_name");
}

/* Reads a hand-built file and compares it with a C-order reference. */
static void check_hand(const char *tag, int major, const char *dict, const void *data, size_t n,
                       vv_dtype want_t, int want_nd, int64_t r, int64_t c, const void *ref)
{
    unsigned char buf[1024];
    char path[512];
    size_t len = build_npy(buf, major, dict, data, n);
    tp(path, sizeof path, tag);
    write_bytes(path, buf, len);
    vv_array a;
    int rc = vv_npy_read(path, &a);
    CHECKF(rc == 0, "%s: read (%s)", tag, vv_err_detail());
    CHECKF(rc == 0 && a.dtype == want_t && a.ndim == want_nd && a.shape[0] == r && a.shape[1] == c,
           "%s: dtype and shape", tag);
    CHECKF(rc == 0 && !memcmp(a.data, ref, n), "%s: values in C order", tag);
    vv_array_free(&a);
    unlink(path);
}

static void test_hand_built(void)
{
    /* A 3x4 matrix a[i][j] = 10 i + j, stored column by column. */
    double fd[12], cd[12];
    float ff[12], cf[12];
    int64_t fi[12], ci[12];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            fd[j * 3 + i] = 10 * i + j;
            cd[i * 4 + j] = 10 * i + j;
            ff[j * 3 + i] = (float)(10 * i + j) + 0.5f;
            cf[i * 4 + j] = (float)(10 * i + j) + 0.5f;
            fi[j * 3 + i] = -(10 * i + j);
            ci[i * 4 + j] = -(10 * i + j);
        }
    check_hand("fortran_f8.npy", 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 4), }",
               fd, sizeof fd, VV_F64, 2, 3, 4, cd);
    check_hand("fortran_f4.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }",
               ff, sizeof ff, VV_F32, 2, 3, 4, cf);
    check_hand("fortran_i8.npy", 1, "{'descr': '<i8', 'fortran_order': True, 'shape': (3, 4), }",
               fi, sizeof fi, VV_I64, 2, 3, 4, ci);
    check_hand("fortran_1d.npy", 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (12,), }", cd,
               sizeof cd, VV_F64, 1, 12, 1, cd);
    check_hand("v2.npy", 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", cd,
               sizeof cd, VV_F64, 2, 3, 4, cd);
    check_hand("v3.npy", 3, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 4), }", ff,
               sizeof ff, VV_F32, 2, 3, 4, cf);
    /* Key order, quoting, spacing and trailing commas vary between writers. */
    check_hand("order.npy", 1, "{'shape': (3,4), 'fortran_order': False, 'descr': '<f8'}", cd,
               sizeof cd, VV_F64, 2, 3, 4, cd);
    check_hand("quotes.npy", 1,
               "{ \"descr\" : \"<f8\" ,\"fortran_order\":False,\"shape\":( 12 , ) }", cd, sizeof cd,
               VV_F64, 1, 12, 1, cd);
    check_hand("py2long.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3L, 4L), }",
               cd, sizeof cd, VV_F64, 2, 3, 4, cd);
    check_hand("trailcomma2.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4,)}",
               cd, sizeof cd, VV_F64, 2, 3, 4, cd);
}

static void test_malformed(void)
{
    unsigned char buf[1024];
    double z[4] = {0};
    size_t n;

    expect_fail_bytes("magic.npy", "\x89PNG\r\n\x1a\n0000", 12, VV_EFORMAT, "not a .npy");
    expect_fail_bytes("empty0.npy", "", 0, VV_EFORMAT, "not a .npy");
    expect_fail_bytes("short.npy", "\x93NUM", 4, VV_EFORMAT, "not a .npy");

    n = build_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", z, 32);
    buf[6] = 4;
    expect_fail_bytes("version4.npy", buf, n, VV_EFORMAT, "version 4.0");
    buf[6] = 1;
    buf[7] = 1;
    expect_fail_bytes("version11.npy", buf, n, VV_EFORMAT, "version 1.1");
    buf[7] = 0;
    buf[8] = 0xff;
    buf[9] = 0x7f;
    expect_fail_bytes("hlen.npy", buf, n, VV_EFORMAT, "truncated");
    n = build_npy(buf, 2, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", z, 32);
    buf[11] = 0x7f;
    expect_fail_bytes("hlen_huge.npy", buf, n, VV_EFORMAT, "too large");

    const char *f = "'fortran_order': False";
    char d[256];
    expect_fail_dict("nokey.npy", "{'descr': '<f8', 'shape': (4,), }", 32, VV_EFORMAT,
                     "missing key 'fortran_order'");
    expect_fail_dict("unknown.npy",
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), 'x': 1}", 32,
                     VV_EFORMAT, "unexpected key 'x'");
    expect_fail_dict("dup.npy",
                     "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (4,)}", 32,
                     VV_EFORMAT, "duplicate key 'descr'");
    expect_fail_dict("notdict.npy", "['descr', '<f8']", 32, VV_EFORMAT, "'{'");
    expect_fail_dict("unterminated.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (4,)",
                     32, VV_EFORMAT, "malformed");
    expect_fail_dict("after.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (4,)} x", 32,
                     VV_EFORMAT, "after the dict");
    expect_fail_dict("badbool.npy", "{'descr': '<f8', 'fortran_order': 0, 'shape': (4,)}", 32,
                     VV_EFORMAT, "True or False");
    expect_fail_dict("badbool2.npy", "{'descr': '<f8', 'fortran_order': Falsey, 'shape': (4,)}", 32,
                     VV_EFORMAT, "True or False");
    expect_fail_dict("notuple.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (4)}", 32,
                     VV_EFORMAT, "not a tuple");
    expect_fail_dict("list.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': [4]}", 32,
                     VV_EFORMAT, "tuple");
    expect_fail_dict("neg.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (-1, 4)}", 32,
                     VV_EFORMAT, "negative");
    expect_fail_dict("huge.npy",
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}",
                     32, VV_EFORMAT, "overflow");
    expect_fail_dict("prod.npy",
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904, 4)}",
                     32, VV_EFORMAT, "overflow");
    expect_fail_dict("escape.npy", "{'descr': '<f\\8', 'fortran_order': False, 'shape': (4,)}", 32,
                     VV_EFORMAT, "character");
    expect_fail_dict("noclose.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (4,", 32,
                     VV_EFORMAT, "malformed");

    /* The header must end with a newline. */
    n = build_npy(buf, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", z, 32);
    buf[10 + (buf[8] | buf[9] << 8) - 1] = ' ';
    expect_fail_bytes("nonl.npy", buf, n, VV_EFORMAT, "newline");

    /* dtypes */
    expect_fail_dict("bigendian.npy", "{'descr': '>f8', 'fortran_order': False, 'shape': (4,)}", 32,
                     VV_EDTYPE, "big-endian");
    expect_fail_dict("bigendian_f4.npy", "{'descr': '>f4', 'fortran_order': False, 'shape': (4,)}",
                     16, VV_EDTYPE, "'>f4'");
    const char *bad[] = {"<i4", "|b1", "<c16", "|O", "|f4", "<f2", "|u1", "<U10", "=f8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char tag[64], word[32];
        snprintf(d, sizeof d, "{'descr': '%s', %s, 'shape': (4,)}", bad[i], f);
        snprintf(tag, sizeof tag, "dtype%zu.npy", i);
        snprintf(word, sizeof word, "'%s'", bad[i]);
        expect_fail_dict(tag, d, 32, VV_EDTYPE, word);
    }
    expect_fail_dict("struct.npy",
                     "{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, "
                     "'shape': (4,)}",
                     32, VV_EDTYPE, "structured");

    /* shapes */
    expect_fail_dict("0d.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': ()}", 8,
                     VV_ESHAPE, "0-D");
    expect_fail_dict("3d.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2, 2)}", 32,
                     VV_ESHAPE, "3-D");

    /* sizes */
    expect_fail_dict("trunc.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3)}", 40,
                     VV_EFORMAT, "truncated: header says 2x3 float64 (48 bytes) but only 40");
    expect_fail_dict("extra.npy", "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}", 33,
                     VV_EFORMAT, "trailing data: 1 bytes follow the 2x2 float64");

    /* files that are not there or not files */
    vv_array a;
    char path[512];
    tp(path, sizeof path, "does_not_exist.npy");
    int rc = vv_npy_read(path, &a);
    CHECKF(rc == VV_ENOFILE && strstr(vv_err_detail(), path) &&
               strstr(vv_err_detail(), "no such file"),
           "missing file: ENOFILE (%s)", vv_err_detail());
    tp(path, sizeof path, "nodir/x.npy");
    CHECK(vv_npy_read(path, &a) == VV_ENOFILE, "missing directory: ENOFILE");
    tp(path, sizeof path, "adir.npy");
    mkdir(path, 0755);
    rc = vv_npy_read(path, &a);
    CHECKF(rc == VV_EIO && strstr(vv_err_detail(), path) &&
               strstr(vv_err_detail(), "Is a directory"),
           "directory: EIO with strerror (%s)", vv_err_detail());
    rmdir(path);
    if (geteuid() != 0) {
        tp(path, sizeof path, "noperm.npy");
        write_bytes(path, "x", 1);
        chmod(path, 0);
        rc = vv_npy_read(path, &a);
        CHECKF(rc == VV_EIO && strstr(vv_err_detail(), "Permission denied"), "unreadable: EIO (%s)",
               vv_err_detail());
        unlink(path);
    }
    /* A safetensors file is not a .npy file. */
    tp(path, sizeof path, "st.npy");
    write_bytes(path, "\x02\0\0\0\0\0\0\0{}", 10);
    rc = vv_npy_read(path, &a);
    CHECKF(rc == VV_EFORMAT && strstr(vv_err_detail(), "magic 02 00"),
           "safetensors given to vv_npy_read (%s)", vv_err_detail());
    unlink(path);
    CHECK(vv_npy_read(NULL, &a) == VV_EINVAL, "NULL path: EINVAL");
}

/* Cutting a valid file at any byte must fail cleanly. */
static void test_truncation(void)
{
    char path[512], cut[512];
    double v[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    tp(path, sizeof path, "whole.npy");
    tp(cut, sizeof cut, "cut.npy");
    vv_npy_write(path, VV_F64, 2, shape, v);
    size_t n;
    unsigned char *raw = slurp(path, &n);
    int all = 1, clean = 1;
    for (size_t k = 0; raw && k < n; k++) {
        write_bytes(cut, raw, k);
        vv_array a;
        int rc = vv_npy_read(cut, &a);
        if (rc != VV_EFORMAT)
            all = 0;
        if (a.data || !strstr(vv_err_detail(), cut))
            clean = 0;
    }
    CHECKF(raw && all, "truncated at each of %zu offsets: EFORMAT", n);
    CHECK(raw && clean, "truncated: out zeroed and detail names the file");
    vv_array a;
    CHECK(vv_npy_read(path, &a) == 0, "untruncated file reads");
    vv_array_free(&a);
    free(raw);
    unlink(path);
    unlink(cut);
}

static void test_write_errors(void)
{
    char path[512];
    double v[8] = {0};
    int64_t shape[3] = {2, 2, 2};
    tp(path, sizeof path, "werr.npy");
    int rc = vv_npy_write(path, VV_F16, 1, shape, v);
    CHECKF(rc == VV_EDTYPE && strstr(vv_err_detail(), path), "write F16: EDTYPE (%s)",
           vv_err_detail());
    rc = vv_npy_write(path, VV_F64, 3, shape, v);
    CHECKF(rc == VV_ESHAPE && strstr(vv_err_detail(), "3-D"), "write 3-D: ESHAPE (%s)",
           vv_err_detail());
    int64_t neg[2] = {-2, 2};
    CHECK(vv_npy_write(path, VV_F64, 2, neg, v) == VV_ESHAPE, "write negative dim: ESHAPE");
    CHECK(vv_npy_write(path, VV_F64, 2, shape, NULL) == VV_EINVAL, "write NULL data: EINVAL");
    CHECK(access(path, F_OK) != 0, "failed writes leave no file");
    tp(path, sizeof path, "nodir/w.npy");
    rc = vv_npy_write(path, VV_F64, 2, shape, v);
    CHECKF(rc == VV_EIO && strstr(vv_err_detail(), path) && strstr(vv_err_detail(), "No such file"),
           "write into a missing directory: EIO (%s)", vv_err_detail());

    /* Overwriting replaces the file whole. */
    tp(path, sizeof path, "over.npy");
    vv_npy_write(path, VV_F64, 2, shape, v);
    double w[3] = {7, 8, 9};
    int64_t s1[1] = {3};
    CHECK(vv_npy_write(path, VV_F64, 1, s1, w) == 0, "overwrite");
    vv_array a;
    CHECK(vv_npy_read(path, &a) == 0 && a.shape[0] == 3 && ((double *)a.data)[2] == 9,
          "overwritten file has the new contents");
    vv_array_free(&a);
    unlink(path);
}

/* Files written by numpy (tests/fixtures/gen_array_fixtures.py). */
static void test_numpy_fixtures(void)
{
    char path[512];
    vv_array a;
    int rc;

    snprintf(path, sizeof path, "%s/arrays/c_f4.npy", VV_FIXTURES);
    rc = vv_npy_read(path, &a);
    CHECKF(rc == 0 && a.dtype == VV_F32 && a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == 4,
           "numpy c_f4.npy (%s)", rc ? vv_err_detail() : "ok");
    int ok = rc == 0;
    for (int i = 0; ok && i < 12; i++)
        ok = ((float *)a.data)[i] == 0.5f * (float)i - 1.0f;
    CHECK(ok, "numpy c_f4.npy values");
    vv_array_free(&a);

    const char *fort[] = {"fortran_f8.npy", "v2_fortran_f8.npy", "v3_f8.npy"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/arrays/%s", VV_FIXTURES, fort[k]);
        rc = vv_npy_read(path, &a);
        CHECKF(rc == 0 && a.dtype == VV_F64 && a.shape[0] == 3 && a.shape[1] == 5, "numpy %s (%s)",
               fort[k], rc ? vv_err_detail() : "ok");
        ok = rc == 0;
        for (int i = 0; ok && i < 3; i++)
            for (int j = 0; j < 5; j++)
                ok &= ((double *)a.data)[i * 5 + j] == 100.0 * i + j + 0.25;
        CHECKF(ok, "numpy %s values in C order", fort[k]);
        vv_array_free(&a);
    }

    snprintf(path, sizeof path, "%s/arrays/i8_1d.npy", VV_FIXTURES);
    rc = vv_npy_read(path, &a);
    CHECKF(rc == 0 && a.dtype == VV_I64 && a.ndim == 1 && a.shape[0] == 5 && a.shape[1] == 1,
           "numpy i8_1d.npy (%s)", rc ? vv_err_detail() : "ok");
    ok = rc == 0;
    for (int i = 0; ok && i < 5; i++)
        ok = ((int64_t *)a.data)[i] == -3 * i + ((int64_t)1 << 40);
    CHECK(ok, "numpy i8_1d.npy values");
    vv_array_free(&a);

    snprintf(path, sizeof path, "%s/arrays/big_f8.npy", VV_FIXTURES);
    rc = vv_npy_read(path, &a);
    CHECKF(rc == VV_EDTYPE && strstr(vv_err_detail(), "big-endian"),
           "numpy big-endian file: EDTYPE (%s)", vv_err_detail());
    snprintf(path, sizeof path, "%s/arrays/i4.npy", VV_FIXTURES);
    rc = vv_npy_read(path, &a);
    CHECKF(rc == VV_EDTYPE && strstr(vv_err_detail(), "'<i4'"), "numpy int32 file: EDTYPE (%s)",
           vv_err_detail());
}

int main(void)
{
    const char *t = getenv("VV_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", t && *t ? t : "/tmp");
    test_dtype_helpers();
    test_round_trips();
    test_hand_built();
    test_malformed();
    test_truncation();
    test_write_errors();
    test_numpy_fixtures();
    return tap_done();
}
