/* test_err.c - the error table is consistent and the detail works. */
#include "tap.h"
#include "vv/err.h"

#include <string.h>

/* 1 when s is valid UTF-8 (no overlong form, surrogate or code point above
 * U+10FFFF) with no C0, DEL or C1 control character. */
static int utf8_printable(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p, cp;
        int n;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return 0;
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, cp = c & 0x07;
        else
            return 0;
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
            return 0;
        p += n + 1;
    }
    return 1;
}

int main(void)
{
    static const int codes[] = {
#define X(name, value, http, code, msg) name,
        VV_ERR_TABLE(X)
#undef X
    };
    int n = (int)(sizeof codes / sizeof codes[0]);
    int unique = 1, statuses = 1, names = 1;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++)
            if (codes[i] == codes[j] || !strcmp(vv_err_code(codes[i]), vv_err_code(codes[j])))
                unique = 0;
        int s = vv_err_http_status(codes[i]);
        if (codes[i] != 0 && (s < 400 || s > 599))
            statuses = 0;
        if (strncmp(vv_err_name(codes[i]), "VV_", 3))
            names = 0;
    }
    CHECK(unique, "error values and error_codes are unique");
    CHECK(statuses, "every error maps to a 4xx or 5xx status");
    CHECK(names, "names come from the table");
    CHECK(vv_err_http_status(VV_EINVAL) == 400, "invalid parameter is a 400");
    CHECK(vv_err_http_status(VV_ENOTFOUND) == 404, "missing resource is a 404");
    CHECK(vv_err_http_status(VV_ESTATE) == 409, "illegal state change is a 409");
    CHECK(vv_err_http_status(VV_EBUSY) == 429, "a full queue is a 429");
    CHECK(!strcmp(vv_err_code(-9999), "INTERNAL_ERROR"), "unknown values map to internal error");
    int rc = vv_fail(VV_EFORMAT, "%s: bad magic", "x.npy");
    CHECK(rc == VV_EFORMAT, "vv_fail returns its code");
    CHECK(!strcmp(vv_err_detail(), "x.npy: bad magic"), "vv_fail records the detail");
    vv_err_clear();
    CHECK(vv_err_detail()[0] == 0, "vv_err_clear empties the detail");

    /* Details are valid UTF-8 with no control character, whatever bytes a
     * file or a request put in the arguments. */
    vv_fail(VV_EDTYPE, "dtype '%s'", "<f\xff\x01\n\x7f");
    CHECK(!strcmp(vv_err_detail(), "dtype '<f\\xff\\x01\\x0a\\x7f'"),
          "invalid UTF-8, C0 controls and DEL in a detail come out as \\xNN");
    CHECK(utf8_printable(vv_err_detail()), "that detail is valid UTF-8 with no control byte");
    vv_fail(VV_EFORMAT, "%s", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xce\xbb");
    CHECK(!strcmp(vv_err_detail(), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xce\xbb"),
          "valid multi-byte text is kept as it is");
    vv_fail(VV_EFORMAT, "%s",
            "a\xc0\xaf"
            "b\xed\xa0\x80"
            "c\xf4\x90\x80\x80"
            "d\xe2\x82");
    CHECK(!strcmp(vv_err_detail(), "a\\xc0\\xafb\\xed\\xa0\\x80c\\xf4\\x90\\x80\\x80d\\xe2\\x82"),
          "overlong forms, surrogates, code points above U+10FFFF and a cut sequence are escaped");
    CHECK(utf8_printable(vv_err_detail()), "that detail is valid UTF-8 with no control byte");
    vv_fail(VV_EFORMAT, "%s", "c1 \xc2\x85 end");
    CHECK(!strcmp(vv_err_detail(), "c1 \\xc2\\x85 end"), "a C1 control character is escaped");

    /* A detail formatted from the detail itself keeps the earlier text. */
    vv_fail(VV_ENOFILE, "spec.json: no such file");
    vv_fail(VV_ENOFILE, "%s", vv_err_detail());
    CHECK(!strcmp(vv_err_detail(), "spec.json: no such file"),
          "vv_fail(e, \"%s\", vv_err_detail()) keeps the detail");
    vv_fail(VV_ENOFILE, "%s: more", vv_err_detail());
    CHECK(!strcmp(vv_err_detail(), "spec.json: no such file: more"),
          "vv_fail(e, \"%s: more\", vv_err_detail()) appends to it");
    vv_fail(VV_EINVAL, "x%s", vv_err_detail());
    CHECK(!strcmp(vv_err_detail(), "xspec.json: no such file: more"),
          "vv_fail(e, \"x%s\", vv_err_detail()) prepends to it");

    /* A long detail is cut whole: never in the middle of a character or an
     * escape, and still valid. */
    char big[3000];
    for (int i = 0; i < 2999; i++)
        big[i] = i % 3 == 0 ? '\x01' : (char)(i % 3 == 1 ? 0xce : 0xbb);
    big[2999] = 0;
    vv_fail(VV_EFORMAT, "%s", big);
    size_t dl = strlen(vv_err_detail());
    CHECK(dl > 900 && dl < 1024, "a long detail is cut to the buffer");
    CHECK(utf8_printable(vv_err_detail()), "a cut detail is valid UTF-8 with whole escapes");
    const char *d = vv_err_detail();
    CHECK(dl >= 2 && !strcmp(d + dl - 2, "\xce\xbb"), "the cut falls after a whole character");
    for (int i = 0; i < 2999; i++)
        big[i] = (char)(i % 2 == 0 ? 0xe2 : 0x82); /* a stray byte every other */
    big[2999] = 0;
    vv_fail(VV_EFORMAT, "%s", big);
    dl = strlen(vv_err_detail());
    CHECK(dl > 0 && dl % 4 == 0 && utf8_printable(vv_err_detail()),
          "a detail of escapes only is cut at an escape's end");
    return tap_done();
}
