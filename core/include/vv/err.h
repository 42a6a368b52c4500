/* vv/err.h - the one error table of vvd.
 *
 * Every fallible function of libvv returns 0 (or a non-negative count) on
 * success and a negative vv_err on failure.  The X-macro table below is the
 * single source of the code, its message, the HTTP status the daemon answers
 * with and the machine-readable error_code of problem+json bodies.
 *
 * A failing function also records a human-readable detail (naming the file,
 * field or value at fault) in a thread-local buffer; read it with
 * vv_err_detail() on the same thread before the next failing call.
 */
#ifndef VV_ERR_H
#define VV_ERR_H

#include <stdarg.h>
#include <stddef.h>

/*      name           value http error_code                  message */
#define VV_ERR_TABLE(X)                                                                 \
    X(VV_OK,            0,  200, "OK",                       "success")                 \
    X(VV_EINVAL,       -1,  400, "INVALID_PARAMETER_VALUE",  "invalid parameter value") \
    X(VV_ETYPE,        -2,  400, "INVALID_TYPE",             "wrong type")              \
    X(VV_EUNKNOWN,     -3,  400, "UNKNOWN_FIELD",            "unknown field")           \
    X(VV_EMISSING,     -4,  400, "MISSING_FIELD",            "missing required field")  \
    X(VV_EJSON,        -5,  400, "MALFORMED_JSON",           "malformed JSON")          \
    X(VV_ENOFILE,      -6,  400, "FILE_NOT_FOUND",           "file not found")          \
    X(VV_EFORMAT,      -7,  400, "BAD_FILE_FORMAT",          "malformed file")          \
    X(VV_ESHAPE,       -8,  400, "SHAPE_MISMATCH",           "shape mismatch")          \
    X(VV_EDTYPE,       -9,  400, "UNSUPPORTED_DTYPE",        "unsupported dtype")       \
    X(VV_ENONFINITE,  -10,  400, "NON_FINITE_VALUE",         "NaN or Inf in data")      \
    X(VV_EPATH,       -11,  403, "PATH_OUTSIDE_DATA_ROOT",   "path outside data root")  \
    X(VV_ENOTFOUND,   -12,  404, "RESOURCE_DOES_NOT_EXIST",  "resource does not exist") \
    X(VV_ESTATE,      -13,  409, "INVALID_STATE",            "invalid state transition")\
    X(VV_ECONFLICT,   -14,  409, "RESOURCE_CONFLICT",        "resource conflict")       \
    X(VV_ETOOLARGE,   -15,  413, "TOO_LARGE",                "request too large")       \
    X(VV_EBUSY,       -16,  429, "RESOURCE_EXHAUSTED",       "queue full")              \
    X(VV_ENOMEM,      -17,  500, "OUT_OF_MEMORY",            "out of memory")           \
    X(VV_EIO,         -18,  500, "IO_ERROR",                 "input/output error")      \
    X(VV_EINTERNAL,   -19,  500, "INTERNAL_ERROR",           "internal error")          \
    X(VV_EDEVICE,     -20,  503, "UNAVAILABLE",              "device unavailable")      \
    X(VV_ENUMERIC,    -21,  422, "NUMERICAL_FAILURE",        "numerical failure")      \
    X(VV_EAUTH,       -22,  401, "UNAUTHENTICATED",          "missing or wrong bearer token") \
    X(VV_EMETHOD,     -23,  405, "METHOD_NOT_ALLOWED",       "method not allowed")     \
    X(VV_ENOSPACE,    -24,  507, "INSUFFICIENT_STORAGE",     "no space left on the device")

typedef enum {
#define VV_ERR_ENUM(name, value, http, code, msg) name = value,
    VV_ERR_TABLE(VV_ERR_ENUM)
#undef VV_ERR_ENUM
} vv_err;

/* Message, HTTP status and error_code of err; unknown values map to
 * VV_EINTERNAL.  The returned strings are static. */
const char *vv_err_message(int err);
int vv_err_http_status(int err);
const char *vv_err_code(int err);
const char *vv_err_name(int err);

/* Records a detail message for the calling thread and returns err, so that
 * a failure is reported as `return vv_fail(VV_EFORMAT, "%s: bad magic", p);`.
 * The detail is stored escaped: bytes that are not valid UTF-8 and control
 * characters become \xNN, so a detail is always valid UTF-8 whatever a file
 * or a request put in the arguments; an argument may be vv_err_detail()
 * itself. */
int vv_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int vv_failv(int err, const char *fmt, va_list ap);

/* The calling thread's last detail; "" when none.  Valid until the next
 * vv_fail on this thread. */
const char *vv_err_detail(void);

/* Copies src into dst (cap bytes, NUL-terminated, cut at a character) with
 * the escaping of details: for text from outside that goes into JSON. */
void vv_escape_text(char *dst, size_t cap, const char *src);
void vv_err_clear(void);

#endif
