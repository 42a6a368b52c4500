/* err.c - the error table's accessors and the thread-local detail. */
#include "vv/err.h"

#include <stdio.h>
#include <string.h>

static _Thread_local char detail[1024];

#define VV_ROW(name, value, http, code, msg) {value, http, code, msg, #name},
static const struct {
    int value;
    int http;
    const char *code;
    const char *msg;
    const char *name;
} table[] = {VV_ERR_TABLE(VV_ROW)};
#undef VV_ROW

static int row_of(int err)
{
    for (unsigned i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].value == err)
            return (int)i;
    for (unsigned i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].value == VV_EINTERNAL)
            return (int)i;
    return 0;
}

const char *vv_err_message(int err) { return table[row_of(err)].msg; }
int vv_err_http_status(int err) { return table[row_of(err)].http; }
const char *vv_err_code(int err) { return table[row_of(err)].code; }
const char *vv_err_name(int err) { return table[row_of(err)].name; }

/* The length of the valid UTF-8 sequence at s (n bytes there): 1 to 4; 0
 * when the bytes there are not one (a stray continuation byte, an overlong
 * form, a surrogate, a code point above U+10FFFF); -1 when they begin a
 * valid sequence that the end of the n bytes cuts. */
static int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0], lo = 0x80, hi = 0xBF;
    int len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c == 0xE0)
        len = 3, lo = 0xA0;
    else if (c == 0xED)
        len = 3, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF)
        len = 3;
    else if (c == 0xF0)
        len = 4, lo = 0x90;
    else if (c == 0xF4)
        len = 4, hi = 0x8F;
    else if (c >= 0xF1 && c <= 0xF3)
        len = 4;
    else
        return 0;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return -1;
        if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF))
            return 0;
    }
    return len;
}

/* Copies the n bytes of src into dst (cap bytes, NUL-terminated) with every
 * byte that is not part of valid UTF-8, and every byte of a control
 * character (C0, DEL, C1), written as \xNN; stops before a character or an
 * escape that would not fit whole.  A sequence cut by the end of src is
 * dropped when src was truncated (cut), escaped otherwise. */
static void copy_escaped(char *dst, size_t cap, const char *src, size_t n, int cut)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *s = (const unsigned char *)src + i;
        int len = utf8_seq(s, n - i);
        if (len < 0 && cut)
            break;
        int ctrl = (len == 1 && (s[0] < 0x20 || s[0] == 0x7F)) ||
                   (len == 2 && s[0] == 0xC2 && s[1] < 0xA0);
        size_t k = len > 0 ? (size_t)len : 1;
        if (len > 0 && !ctrl) {
            if (o + k >= cap)
                break;
            memcpy(dst + o, s, k);
            o += k;
        } else {
            if (o + 4 * k >= cap)
                break;
            for (size_t j = 0; j < k; j++) {
                dst[o++] = '\\';
                dst[o++] = 'x';
                dst[o++] = hex[s[j] >> 4];
                dst[o++] = hex[s[j] & 15];
            }
        }
        i += k;
    }
    dst[o] = 0;
}

/* The text is formatted into a buffer of its own first, so that an argument
 * may be the detail itself (vv_fail(e, "%s: more", vv_err_detail())), and
 * is then copied into the detail escaped: the detail is always valid UTF-8
 * with no control character, whatever bytes a file or a request put in the
 * arguments. */
int vv_failv(int err, const char *fmt, va_list ap)
{
    char buf[sizeof detail];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0) {
        detail[0] = 0;
        return err;
    }
    int cut = (size_t)n >= sizeof buf;
    copy_escaped(detail, sizeof detail, buf, cut ? sizeof buf - 1 : (size_t)n, cut);
    return err;
}

void vv_escape_text(char *dst, size_t cap, const char *src)
{
    if (cap)
        copy_escaped(dst, cap, src, strlen(src), 0);
}

int vv_fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vv_failv(err, fmt, ap);
    va_end(ap);
    return err;
}

const char *vv_err_detail(void) { return detail; }
void vv_err_clear(void) { detail[0] = 0; }
