/* test_err.c - the error table is consistent and the detail works. */
#include "tap.h"
#include "vv/err.h"

#include <string.h>

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
    return tap_done();
}
