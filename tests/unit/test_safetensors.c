/* test_safetensors.c - .safetensors reading, listing and writing: round
 * trips of every dtype and rank, F16/BF16 decoding from hand-built bits,
 * every malformed header, truncation at every byte, and a fixture written
 * independently in Python; torch.save files (zip, pickle) named as such. */
#include "file_util.h"
#include "tap.h"
#include "vv/array.h"
#include "vv/err.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

static void tp(char *buf, size_t cap, const char *name) { tmp_path(buf, cap, "st", name); }

/* Writes a .safetensors file by hand: the 8-byte length, json exactly as
 * given (no padding) and n bytes of data. */
static void build_st(const char *path, const char *json, const void *data, size_t n)
{
    size_t hl = strlen(json);
    unsigned char *buf = malloc(8 + hl + n + 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, json, hl);
    if (n)
        memcpy(buf + 8 + hl, data, n);
    write_bytes(path, buf, 8 + hl + n);
    free(buf);
}

static void expect(int rc, int code, const char *path, const char *word, const char *tag)
{
    const char *d = vv_err_detail();
    CHECKF(rc == code, "%s: code %s (want %s)", tag, vv_err_name(rc), vv_err_name(code));
    CHECKF(strstr(d, path) && strstr(d, word), "%s: detail names file and '%s': %s", tag, word, d);
}

/* A hand-built file whose read of tensor name must fail with code. */
static void expect_json(const char *tag, const char *json, size_t ndata, const char *name, int code,
                        const char *word)
{
    char path[512];
    unsigned char zeros[512] = {0};
    tp(path, sizeof path, tag);
    build_st(path, json, zeros, ndata);
    vv_array a;
    memset(&a, 0x5a, sizeof a);
    expect(vv_safetensors_read(path, name, &a), code, path, word, tag);
    CHECKF(a.data == NULL && a.ndim == 0, "%s: out zeroed", tag);
    unlink(path);
}

static void test_round_trip(void)
{
    float f32[24];
    double f64[24];
    int64_t i64[24];
    for (int i = 0; i < 24; i++) {
        f32[i] = (float)i * 1.25f - 7;
        f64[i] = 1.0 / (i + 1) - 0.1;
        i64[i] = (int64_t)i * 1000000007LL - 5;
    }
    vv_st_tensor t[] = {
        {"a_f32_1d", VV_F32, 1, {24}, f32},         {"b_f64_2d", VV_F64, 2, {4, 6}, f64},
        {"c_i64_2d", VV_I64, 2, {6, 4}, i64},       {"d_f32_3d", VV_F32, 3, {2, 3, 4}, f32},
        {"e_f64_4d", VV_F64, 4, {1, 2, 3, 4}, f64}, {"f_i64_1d", VV_I64, 1, {24}, i64},
        {"g_empty", VV_F32, 2, {0, 3}, NULL},       {"h_f32_2d", VV_F32, 2, {3, 8}, f32},
    };
    int nt = (int)(sizeof t / sizeof t[0]);
    char path[512];
    tp(path, sizeof path, "rt.safetensors");
    int rc = vv_safetensors_write(path, t, nt);
    CHECKF(rc == 0, "write %d tensors (%s)", nt, vv_err_detail());

    char **names;
    int count;
    rc = vv_safetensors_names(path, &names, &count);
    int same = rc == 0 && count == nt;
    for (int i = 0; same && i < nt; i++)
        same = !strcmp(names[i], t[i].name);
    CHECKF(same, "names in data order (%s)", rc ? vv_err_detail() : "ok");
    vv_safetensors_names_free(names, count);
    vv_safetensors_names_free(NULL, 0);

    for (int i = 0; i < nt; i++) {
        vv_array a;
        rc = vv_safetensors_read(path, t[i].name, &a);
        if (t[i].ndim > 2) {
            CHECKF(rc == VV_ESHAPE && strstr(vv_err_detail(), t[i].name) &&
                       strstr(vv_err_detail(), "-D"),
                   "%s: %d-D read is ESHAPE (%s)", t[i].name, t[i].ndim, vv_err_detail());
            continue;
        }
        int64_t r = t[i].shape[0], c = t[i].ndim == 2 ? t[i].shape[1] : 1;
        CHECKF(rc == 0 && a.dtype == t[i].dtype && a.ndim == t[i].ndim && a.shape[0] == r &&
                   a.shape[1] == c,
               "%s: dtype and shape (%s)", t[i].name, rc ? vv_err_detail() : "ok");
        size_t nb = (size_t)(r * c) * vv_dtype_size(t[i].dtype);
        CHECKF(rc == 0 && (nb == 0 || !memcmp(a.data, t[i].data, nb)), "%s: values bit-exact",
               t[i].name);
        vv_array_free(&a);
    }

    /* The layout: header length a multiple of 8, metadata, contiguous data. */
    size_t n;
    unsigned char *raw = slurp(path, &n);
    uint64_t hl = 0;
    for (int i = 7; raw && i >= 0; i--)
        hl = hl << 8 | raw[i];
    size_t total = 0;
    for (int i = 0; i < nt; i++) {
        size_t e = vv_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++)
            e *= (size_t)t[i].shape[d];
        total += e;
    }
    CHECK(raw && hl % 8 == 0 && 8 + hl + total == n, "header padded to 8, data follows whole");
    char *hdr = raw ? strndup((char *)raw + 8, hl) : NULL;
    CHECKF(hdr && strstr(hdr, "\"__metadata__\":{\"format\":\"pt\"}") &&
               strstr(hdr, "\"b_f64_2d\":{\"dtype\":\"F64\",\"shape\":[4,6],\"data_offsets\":[96,"
                           "288]}"),
           "header JSON: %s", hdr ? hdr : "?");
    free(hdr);
    free(raw);
    unlink(path);

    /* A single tensor may be read without naming it. */
    tp(path, sizeof path, "one.safetensors");
    vv_st_tensor one = {"only", VV_F64, 2, {2, 3}, f64};
    vv_safetensors_write(path, &one, 1);
    vv_array a;
    rc = vv_safetensors_read(path, NULL, &a);
    CHECK(rc == 0 && a.shape[0] == 2 && a.shape[1] == 3 && ((double *)a.data)[5] == f64[5],
          "name NULL reads the only tensor");
    vv_array_free(&a);
    unlink(path);

    /* Names needing JSON escapes survive. */
    tp(path, sizeof path, "esc.safetensors");
    vv_st_tensor odd[2] = {{"we\"ird\\na\tme/é", VV_F32, 1, {2}, f32},
                           {"layer.0.weight", VV_F32, 1, {3}, f32}};
    rc = vv_safetensors_write(path, odd, 2);
    rc = rc ? rc : vv_safetensors_names(path, &names, &count);
    CHECKF(rc == 0 && count == 2 && !strcmp(names[0], odd[0].name) &&
               !strcmp(names[1], odd[1].name),
           "escaped names round-trip (%s)", rc ? vv_err_detail() : "ok");
    if (rc == 0)
        vv_safetensors_names_free(names, count);
    rc = vv_safetensors_read(path, odd[0].name, &a);
    CHECK(rc == 0 && a.shape[0] == 2 && ((float *)a.data)[1] == f32[1], "read escaped name");
    vv_array_free(&a);
    unlink(path);
}

static void test_half(void)
{
    static const struct {
        uint16_t bits;
        float want;
    } f16[] =
        {
            {0x3C00, 1.0f},           {0xC100, -2.5f},         {0x7BFF, 65504.0f},
            {0x0001, 5.9604645e-8f},  {0x03FF, 6.0975552e-5f}, {0x0400, 6.1035156e-5f},
            {0x3555, 0.33325195f},    {0x0000, 0.0f},          {0xFBFF, -65504.0f},
            {0x8001, -5.9604645e-8f},
        },
      bf16[] = {
          {0x3F80, 1.0f},         {0xC020, -2.5f},         {0x4049, 3.140625f},
          {0x0001, 9.18355e-41f}, {0x7F7F, 3.3895314e38f}, {0x0000, 0.0f},
      };
    enum { NF = sizeof f16 / sizeof f16[0], NB = sizeof bf16 / sizeof bf16[0] };
    uint16_t data[NF + 4 + NB + 2];
    for (int i = 0; i < NF; i++)
        data[i] = f16[i].bits;
    /* specials: +Inf, -Inf, NaN, -0 */
    data[NF] = 0x7C00;
    data[NF + 1] = 0xFC00;
    data[NF + 2] = 0x7E00;
    data[NF + 3] = 0x8000;
    for (int i = 0; i < NB; i++)
        data[NF + 4 + i] = bf16[i].bits;
    data[NF + 4 + NB] = 0xFF80;     /* -Inf */
    data[NF + 4 + NB + 1] = 0x7FC1; /* NaN */
    char json[512], path[512];
    snprintf(json, sizeof json,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[%d],\"data_offsets\":[0,%d]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,%d],\"data_offsets\":[%d,%d]}}",
             NF + 4, 2 * (NF + 4), NB + 2, 2 * (NF + 4), 2 * (NF + 4 + NB + 2));
    tp(path, sizeof path, "half.safetensors");
    build_st(path, json, data, sizeof data);

    vv_array a;
    int rc = vv_safetensors_read(path, "h", &a);
    CHECKF(rc == 0 && a.dtype == VV_F32 && a.ndim == 1 && a.shape[0] == NF + 4,
           "F16 read as float32 (%s)", rc ? vv_err_detail() : "ok");
    for (int i = 0; rc == 0 && i < NF; i++) {
        float v = ((float *)a.data)[i];
        CHECKF(v == f16[i].want || fabsf(v - f16[i].want) <= 1e-7f * fabsf(f16[i].want),
               "F16 0x%04x = %.9g (want %.9g)", f16[i].bits, v, f16[i].want);
    }
    if (rc == 0) {
        float *v = a.data;
        CHECK(v[1] == -2.5f && v[3] == 0x1p-24f && v[4] == 1023 * 0x1p-24f,
              "F16 values exact (incl. subnormals)");
        CHECK(isinf(v[NF]) && v[NF] > 0 && isinf(v[NF + 1]) && v[NF + 1] < 0 && isnan(v[NF + 2]) &&
                  v[NF + 3] == 0 && signbit(v[NF + 3]),
              "F16 +Inf, -Inf, NaN, -0");
    }
    vv_array_free(&a);

    rc = vv_safetensors_read(path, "b", &a);
    CHECKF(rc == 0 && a.dtype == VV_F32 && a.ndim == 2 && a.shape[0] == 1 && a.shape[1] == NB + 2,
           "BF16 read as float32 (%s)", rc ? vv_err_detail() : "ok");
    for (int i = 0; rc == 0 && i < NB; i++) {
        float v = ((float *)a.data)[i];
        CHECKF(v == bf16[i].want || fabsf(v - bf16[i].want) <= 1e-6f * fabsf(bf16[i].want),
               "BF16 0x%04x = %.9g (want %.9g)", bf16[i].bits, v, bf16[i].want);
    }
    if (rc == 0) {
        float *v = a.data;
        CHECK(v[3] == 0x1p-133f && isinf(v[NB]) && v[NB] < 0 && isnan(v[NB + 1]),
              "BF16 subnormal, -Inf and NaN exact");
    }
    vv_array_free(&a);
    unlink(path);
}

#define T3F32 "{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}"

static void test_malformed(void)
{
    char path[512];
    vv_array a;

    /* Lengths */
    tp(path, sizeof path, "short.safetensors");
    write_bytes(path, "\x10\0\0\0", 4);
    expect(vv_safetensors_read(path, NULL, &a), VV_EFORMAT, path, "truncated", "shorter than 8");
    write_bytes(path, "\0\0\0\0\0\0\0\0", 8);
    expect(vv_safetensors_read(path, NULL, &a), VV_EFORMAT, path, "too small", "length 0");
    write_bytes(path, "\x01\0\0\0\0\0\0\0{", 9);
    expect(vv_safetensors_read(path, NULL, &a), VV_EFORMAT, path, "too small", "length 1");
    write_bytes(path, "\0\0\0\0\x01\0\0\0{}", 10);
    expect(vv_safetensors_read(path, NULL, &a), VV_EFORMAT, path, "100 MB", "length 4 GB");
    write_bytes(path, "\x40\0\0\0\0\0\0\0{}", 10);
    expect(vv_safetensors_read(path, NULL, &a), VV_EFORMAT, path, "truncated", "length > file");
    write_bytes(path, "\x93NUMPY\x01\0v\0{}", 12);
    expect(vv_safetensors_read(path, NULL, &a), VV_EFORMAT, path, ".npy", "npy file");
    unlink(path);
    tp(path, sizeof path, "nothere.safetensors");
    expect(vv_safetensors_read(path, NULL, &a), VV_ENOFILE, path, "no such file", "missing");
    char **names = (char **)&a;
    int count = 7;
    expect(vv_safetensors_names(path, &names, &count), VV_ENOFILE, path, "no such",
           "names missing");
    CHECK(names == NULL && count == 0, "names: outputs cleared on failure");

    /* JSON structure */
    expect_json("arr.st", "[1, 2]", 0, NULL, VV_EFORMAT, "'{'");
    expect_json("badjson.st", "{\"a\":", 0, NULL, VV_EFORMAT, "not valid JSON");
    expect_json("badjson2.st", "{\"a\" 1}", 0, NULL, VV_EFORMAT, "not valid JSON");
    expect_json("after.st", "{} x", 0, NULL, VV_EFORMAT, "after the JSON");
    expect_json("ctrl.st", "{\"a\":" T3F32 "\001}", 12, "a", VV_EFORMAT, "control character");
    expect_json("twoobj.st", "{}{}", 0, NULL, VV_EFORMAT, "after the JSON");
    expect_json("notobj.st", "{\"a\":1}", 0, NULL, VV_EFORMAT, "not a JSON object");
    expect_json("nodtype.st", "{\"a\":{\"shape\":[3],\"data_offsets\":[0,12]}}", 12, "a",
                VV_EFORMAT, "missing field 'dtype'");
    expect_json("noshape.st", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,12]}}", 12, "a",
                VV_EFORMAT, "missing field 'shape'");
    expect_json("nooffs.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3]}}", 12, "a", VV_EFORMAT,
                "missing field 'data_offsets'");
    expect_json("extra.st",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12],\"x\":1}}", 12,
                "a", VV_EFORMAT, "unexpected field 'x'");
    expect_json("dupfield.st",
                "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[3],"
                "\"data_offsets\":[0,12]}}",
                12, "a", VV_EFORMAT, "duplicate field 'dtype'");
    expect_json("dtypenum.st", "{\"a\":{\"dtype\":4,\"shape\":[3],\"data_offsets\":[0,12]}}", 12,
                "a", VV_EFORMAT, "'dtype' is not a string");
    expect_json("shapeobj.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,12]}}",
                12, "a", VV_EFORMAT, "'shape' is not an array");
    expect_json("shapeneg.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,12]}}",
                12, "a", VV_EFORMAT, "non-negative integer");
    expect_json("shapefrac.st",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5,2],\"data_offsets\":[0,12]}}", 12, "a",
                VV_EFORMAT, "non-negative integer");
    expect_json("shapestr.st",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"3\"],\"data_offsets\":[0,12]}}", 12, "a",
                VV_EFORMAT, "non-negative integer");
    expect_json("shapebig.st",
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                "\"data_offsets\":[0,12]}}",
                12, "a", VV_EFORMAT, "overflows");
    expect_json("offs3.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12,24]}}",
                24, "a", VV_EFORMAT, "two non-negative integers");
    expect_json("offsneg.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[-12,0]}}",
                12, "a", VV_EFORMAT, "two non-negative integers");
    expect_json("offsback.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[12,0]}}",
                12, "a", VV_EFORMAT, "end before");
    expect_json("offssize.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}",
                16, "a", VV_EFORMAT, "span 16 bytes but 3 F32 elements need 12");
    expect_json("offspast.st", "{\"a\":" T3F32 "}", 8, "a", VV_EFORMAT,
                "truncated: tensor 'a' ends at data byte 12 but only 8");
    expect_json("overlap.st",
                "{\"a\":" T3F32 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                16, "a", VV_EFORMAT, "overlap");
    expect_json("dupname.st", "{\"a\":" T3F32 ",\"a\":" T3F32 "}", 12, "a", VV_EFORMAT,
                "'a' appears twice");
    expect_json("meta.st", "{\"__metadata__\":{\"format\":1},\"a\":" T3F32 "}", 12, "a", VV_EFORMAT,
                "__metadata__");
    expect_json("meta2.st", "{\"__metadata__\":[],\"a\":" T3F32 "}", 12, "a", VV_EFORMAT,
                "__metadata__");
    expect_json("unknowndt.st", "{\"a\":{\"dtype\":\"F80\",\"shape\":[3],\"data_offsets\":[0,12]}}",
                12, "a", VV_EDTYPE, "unknown dtype 'F80'");

    /* dtypes and shapes a reader cannot take */
    const char *bad[] = {"I32", "U8", "BOOL", "I8", "U64", "F8_E4M3"};
    for (int i = 0; i < 6; i++) {
        char json[256], tag[64], word[64];
        snprintf(json, sizeof json,
                 "{\"ok\":" T3F32 ",\"t\":{\"dtype\":\"%s\",\"shape\":[1],\"data_offsets\":"
                 "[16,%d]}}",
                 bad[i],
                 16 + (bad[i][1] == '3'   ? 4
                       : bad[i][1] == '6' ? 8
                                          : 1));
        snprintf(tag, sizeof tag, "dt_%s.st", bad[i]);
        snprintf(word, sizeof word, "tensor 't' has dtype %s", bad[i]);
        expect_json(tag, json, 24, "t", VV_EDTYPE, word);
    }
    expect_json("0d.st", "{\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]}}", 8, "s",
                VV_ESHAPE, "'s' is 0-D");
    expect_json("3d.st", "{\"c\":{\"dtype\":\"F64\",\"shape\":[1,1,1],\"data_offsets\":[0,8]}}", 8,
                NULL, VV_ESHAPE, "'c' is 3-D");

    /* Naming tensors */
    const char *two = "{\"alpha\":" T3F32 ",\"beta\":{\"dtype\":\"F32\",\"shape\":[1],"
                      "\"data_offsets\":[12,16]}}";
    expect_json("noname.st", two, 16, NULL, VV_EINVAL, "name one of: alpha, beta");
    expect_json("badname.st", two, 16, "gamma", VV_EINVAL,
                "no tensor named 'gamma' (has: alpha, "
                "beta)");
    expect_json("notensors.st", "{\"__metadata__\":{}}", 0, NULL, VV_EINVAL, "no tensors");

    /* Unpadded headers, gaps and trailing data are fine; names sort by offset. */
    tp(path, sizeof path, "gap.safetensors");
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    build_st(path,
             "{\"z\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]},"
             "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}  ",
             v, sizeof v);
    int rc = vv_safetensors_names(path, &names, &count);
    CHECKF(rc == 0 && count == 2 && !strcmp(names[0], "z") && !strcmp(names[1], "y"),
           "gaps allowed, names by offset (%s)", rc ? vv_err_detail() : "ok");
    if (rc == 0)
        vv_safetensors_names_free(names, count);
    rc = vv_safetensors_read(path, "y", &a);
    CHECK(rc == 0 && ((float *)a.data)[0] == 5 && ((float *)a.data)[1] == 6,
          "read after a gap, unaligned header");
    vv_array_free(&a);
    unlink(path);
}

static void test_truncation(void)
{
    char path[512], cut[512];
    float f[6] = {1, 2, 3, 4, 5, 6};
    double d[2] = {7, 8};
    vv_st_tensor t[2] = {{"w", VV_F32, 2, {2, 3}, f}, {"b", VV_F64, 1, {2}, d}};
    tp(path, sizeof path, "whole.safetensors");
    tp(cut, sizeof cut, "cut.safetensors");
    vv_safetensors_write(path, t, 2);
    size_t n;
    unsigned char *raw = slurp(path, &n);
    int all = 1, clean = 1, lists = 1;
    for (size_t k = 0; raw && k < n; k++) {
        write_bytes(cut, raw, k);
        vv_array a;
        int rc = vv_safetensors_read(cut, "b", &a);
        if (rc != VV_EFORMAT)
            all = 0;
        if (a.data || !strstr(vv_err_detail(), cut))
            clean = 0;
        char **names;
        int count;
        if (vv_safetensors_names(cut, &names, &count) != VV_EFORMAT || names)
            lists = 0;
    }
    CHECKF(raw && all, "truncated at each of %zu offsets: read is EFORMAT", n);
    CHECK(raw && clean, "truncated: out zeroed and detail names the file");
    CHECK(raw && lists, "truncated: names is EFORMAT");
    vv_array a;
    CHECK(vv_safetensors_read(path, "b", &a) == 0 && ((double *)a.data)[1] == 8,
          "untruncated file reads");
    vv_array_free(&a);
    free(raw);
    unlink(path);
    unlink(cut);
}

static void test_write_errors(void)
{
    char path[512];
    float f[4] = {0};
    tp(path, sizeof path, "werr.safetensors");
    vv_st_tensor t = {"x", VV_F16, 1, {4}, f};
    expect(vv_safetensors_write(path, &t, 1), VV_EDTYPE, path, "'x'", "write F16");
    t.dtype = VV_F32;
    t.ndim = 5;
    expect(vv_safetensors_write(path, &t, 1), VV_ESHAPE, path, "ndim 5", "write 5-D");
    t.ndim = 0;
    expect(vv_safetensors_write(path, &t, 1), VV_ESHAPE, path, "ndim 0", "write 0-D");
    t.ndim = 1;
    t.shape[0] = -4;
    expect(vv_safetensors_write(path, &t, 1), VV_ESHAPE, path, "shape", "write negative dim");
    t.shape[0] = 4;
    vv_st_tensor two[2] = {t, t};
    expect(vv_safetensors_write(path, two, 2), VV_EINVAL, path, "twice", "write duplicate");
    t.name = "__metadata__";
    expect(vv_safetensors_write(path, &t, 1), VV_EINVAL, path, "reserved", "write reserved name");
    t.name = "x";
    t.data = NULL;
    expect(vv_safetensors_write(path, &t, 1), VV_EINVAL, path, "NULL", "write NULL data");
    CHECK(access(path, F_OK) != 0, "failed writes leave no file");
    tp(path, sizeof path, "nodir/w.safetensors");
    t.data = f;
    expect(vv_safetensors_write(path, &t, 1), VV_EIO, path, "No such file", "write missing dir");
}

static void test_fixture(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/arrays/mixed.safetensors", VV_FIXTURES);
    char **names;
    int count;
    int rc = vv_safetensors_names(path, &names, &count);
    const char *want[] = {"weight", "bias", "half", "brain", "index", "count"};
    int ok = rc == 0 && count == 6;
    for (int i = 0; ok && i < 6; i++)
        ok = !strcmp(names[i], want[i]);
    CHECKF(ok, "fixture names by offset (%s)", rc ? vv_err_detail() : "ok");
    if (rc == 0)
        vv_safetensors_names_free(names, count);

    vv_array a;
    rc = vv_safetensors_read(path, "weight", &a);
    CHECK(rc == 0 && a.dtype == VV_F32 && a.shape[0] == 2 && a.shape[1] == 3 &&
              ((float *)a.data)[5] == 5,
          "fixture weight");
    vv_array_free(&a);
    rc = vv_safetensors_read(path, "bias", &a);
    CHECK(rc == 0 && a.dtype == VV_F64 && a.ndim == 1 && ((double *)a.data)[1] == -1.5,
          "fixture bias");
    vv_array_free(&a);
    rc = vv_safetensors_read(path, "half", &a);
    float *h = a.data;
    CHECK(rc == 0 && a.dtype == VV_F32 && h[0] == 1 && h[1] == -2.5f && h[2] == 65504 &&
              h[3] == 0x1p-24f,
          "fixture F16 (numpy's float16)");
    vv_array_free(&a);
    rc = vv_safetensors_read(path, "brain", &a);
    h = a.data;
    CHECK(rc == 0 && h[0] == 1 && h[1] == -2 && h[2] == 0.15625f && h[3] == 384, "fixture BF16");
    vv_array_free(&a);
    rc = vv_safetensors_read(path, "index", &a);
    CHECK(rc == 0 && a.dtype == VV_I64 && ((int64_t *)a.data)[1] == -9, "fixture I64");
    vv_array_free(&a);
    rc = vv_safetensors_read(path, "count", &a);
    CHECKF(rc == VV_EDTYPE && strstr(vv_err_detail(), "I32"), "fixture I32: EDTYPE (%s)",
           vv_err_detail());
}

/* A torch.save file where a .safetensors file is expected: a zip archive
 * whose first entry is archive/data.pkl (torch >= 1.6) or a bare pickle
 * (the legacy format), both hand-built; every reader says what it is and
 * how to export safetensors.  A zip that is not torch's (an .npz) says zip;
 * a real .safetensors file whose header length starts with the bytes of a
 * pickle (640 = 0x280: 80 02 ...) still reads. */
static void test_torch_save(void)
{
    unsigned char zip[64] = "PK\3\4";
    const char *entry = "archive/data.pkl";
    zip[26] = (unsigned char)strlen(entry);
    memcpy(zip + 30, entry, strlen(entry));
    unsigned char npz[64] = "PK\3\4";
    npz[26] = 9;
    memcpy(npz + 30, "arr_0.npy", 9);
    /* torch.save's legacy pickle (protocol 2, then the magic number as a
     * LONG1) and a protocol 4 pickle (a FRAME opcode). */
    const unsigned char pk2[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9,
                                 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0x80, 0x02};
    const unsigned char pk4[] = {0x80, 0x04, 0x95, 0x30, 0, 0, 0, 0, 0, 0, 0, 0x7d, 0x94, 0x2e};
    struct {
        const char *tag;
        const void *bytes;
        size_t n;
        const char *what;
    } cases[] = {
        {"torch_zip.pt", zip, sizeof zip, "zip archive with archive/data.pkl"},
        {"torch_pickle.pt", pk2, sizeof pk2, "pickle protocol 2"},
        {"torch_pickle4.pt", pk4, sizeof pk4, "pickle protocol 4"},
        {"arrays.npz", npz, sizeof npz, "zip archive (an .npz"},
    };
    for (unsigned c = 0; c < sizeof cases / sizeof *cases; c++) {
        char path[512];
        tp(path, sizeof path, cases[c].tag);
        write_bytes(path, cases[c].bytes, cases[c].n);
        int torch = c < 3;
        vv_array a;
        int rc = vv_safetensors_read(path, NULL, &a);
        const char *d = vv_err_detail();
        CHECKF(rc == VV_EFORMAT && strstr(d, path) && strstr(d, cases[c].what) &&
                   (!torch || (strstr(d, "PyTorch torch.save file") && strstr(d, "vvd.export(") &&
                               strstr(d, "save_file(model.state_dict()"))),
               "%s: vv_safetensors_read says '%s'%s: %s", cases[c].tag, cases[c].what,
               torch ? " and how to export" : "", d);
        vv_st_f32 *t = NULL;
        int nt = 0;
        rc = vv_safetensors_load_f32(path, &t, &nt);
        CHECKF(rc == VV_EFORMAT && strstr(vv_err_detail(), cases[c].what),
               "%s: vv_safetensors_load_f32 (model weights) too: %s", cases[c].tag,
               vv_err_detail());
        char **names = NULL;
        rc = vv_safetensors_names(path, &names, &nt);
        CHECKF(rc == VV_EFORMAT && strstr(vv_err_detail(), cases[c].what),
               "%s: vv_safetensors_names too", cases[c].tag);
        vv_rows *r = NULL;
        rc = vv_rows_open(path, NULL, &r);
        CHECKF(rc == VV_EFORMAT && strstr(vv_err_detail(), cases[c].what) && !r,
               "%s: vv_rows_open (phi, psi) too: %s", cases[c].tag, vv_err_detail());
        unlink(path);
    }
    /* 640 bytes of header: the file starts 80 02 00 ..., then '{'. */
    char json[641];
    int k = snprintf(json, sizeof json,
                     "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}");
    memset(json + k, ' ', 640 - (size_t)k);
    json[640] = 0;
    float two[2] = {1.5f, -2};
    char path[512];
    tp(path, sizeof path, "hlen640.safetensors");
    build_st(path, json, two, sizeof two);
    vv_array a;
    int rc = vv_safetensors_read(path, "w", &a);
    CHECKF(rc == 0 && a.shape[0] == 2 && ((float *)a.data)[1] == -2,
           "a .safetensors file starting 80 02 (header of 640 bytes) is not taken for a pickle "
           "(%s)",
           rc ? vv_err_detail() : "read");
    vv_array_free(&a);
    unlink(path);
}

int main(void)
{
    const char *t = getenv("VV_TEST_TMP");
    snprintf(tmpdir, sizeof tmpdir, "%s", t && *t ? t : "/tmp");
    test_round_trip();
    test_half();
    test_malformed();
    test_truncation();
    test_write_errors();
    test_fixture();
    test_torch_save();
    return tap_done();
}
