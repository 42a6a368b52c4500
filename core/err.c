/* err.c - the error table's accessors and the thread-local detail. */
#include "vv/err.h"

#include <stdio.h>

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

int vv_failv(int err, const char *fmt, va_list ap)
{
    vsnprintf(detail, sizeof detail, fmt, ap);
    return err;
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
