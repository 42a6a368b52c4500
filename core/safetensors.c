/* safetensors.c - .safetensors files: a strict header validator, a
 * one-tensor reader, a name lister and an atomic writer.
 *
 * A .safetensors file is an 8-byte little-endian header length N, N bytes
 * of JSON (an object mapping tensor names to {"dtype", "shape",
 * "data_offsets": [begin, end]}, plus an optional "__metadata__" object of
 * strings), padded with spaces, and then the data; offsets are relative to
 * the first byte after the header.
 */
#include "array_internal.h"
#include "vv/err.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u * 1000 * 1000)
#define ST_MAX_INT 9007199254740992.0 /* 2^53: larger JSON numbers are inexact */

/* The dtypes of the safetensors format, with their sizes; vv_dtype 0 for
 * the ones vvd cannot read. */
static const struct {
    const char *name;
    size_t size;
    vv_dtype dtype;
} st_dtypes[] = {
    {"F32", 4, VV_F32}, {"F64", 8, VV_F64}, {"F16", 2, VV_F16}, {"BF16", 2, VV_BF16},
    {"I64", 8, VV_I64}, {"BOOL", 1, 0},     {"U8", 1, 0},       {"I8", 1, 0},
    {"F8_E5M2", 1, 0},  {"F8_E4M3", 1, 0},  {"I16", 2, 0},      {"U16", 2, 0},
    {"I32", 4, 0},      {"U32", 4, 0},      {"U64", 8, 0},
};

/* One validated tensor entry; name and dtype point into the JSON tree. */
typedef struct {
    const char *name;
    const char *dtype_name;
    vv_dtype dtype; /* 0 when unsupported */
    size_t esz;
    int ndim;
    int64_t shape[VV_ST_MAXDIM]; /* the first VV_ST_MAXDIM dimensions */
    uint64_t begin, end;
} st_entry;

typedef struct {
    cJSON *root;
    st_entry *e;
    int n;
    uint64_t data_off; /* 8 + N */
} st_header;

static void header_free(st_header *h)
{
    cJSON_Delete(h->root);
    free(h->e);
    memset(h, 0, sizeof *h);
}

/* Reads a JSON number that must be a non-negative integer below 2^53. */
static int get_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= ST_MAX_INT) || d != floor(d))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_entry(const char *path, const cJSON *item, uint64_t data_size, st_entry *e)
{
    const char *name = item->string;
    const cJSON *dt = NULL, *shape = NULL, *offs = NULL, *f;

    if (!cJSON_IsObject(item))
        return vv_fail(VV_EFORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);
    cJSON_ArrayForEach(f, item)
    {
        const cJSON **slot = !strcmp(f->string, "dtype")          ? &dt
                             : !strcmp(f->string, "shape")        ? &shape
                             : !strcmp(f->string, "data_offsets") ? &offs
                                                                  : NULL;
        if (!slot)
            return vv_fail(VV_EFORMAT, "%s: tensor '%s': unexpected field '%s'", path, name,
                           f->string);
        if (*slot)
            return vv_fail(VV_EFORMAT, "%s: tensor '%s': duplicate field '%s'", path, name,
                           f->string);
        *slot = f;
    }
    if (!dt || !shape || !offs)
        return vv_fail(VV_EFORMAT, "%s: tensor '%s': missing field '%s'", path, name,
                       !dt      ? "dtype"
                       : !shape ? "shape"
                                : "data_offsets");
    if (!cJSON_IsString(dt))
        return vv_fail(VV_EFORMAT, "%s: tensor '%s': 'dtype' is not a string", path, name);
    e->name = name;
    e->dtype_name = dt->valuestring;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(dt->valuestring, st_dtypes[i].name)) {
            e->esz = st_dtypes[i].size;
            e->dtype = st_dtypes[i].dtype;
        }
    if (!e->esz)
        return vv_fail(VV_EDTYPE, "%s: tensor '%s' has unknown dtype '%.32s'", path, name,
                       dt->valuestring);

    if (!cJSON_IsArray(shape))
        return vv_fail(VV_EFORMAT, "%s: tensor '%s': 'shape' is not an array", path, name);
    uint64_t nelem = 1;
    e->ndim = 0;
    cJSON_ArrayForEach(f, shape)
    {
        uint64_t d;
        if (get_uint(f, &d) < 0)
            return vv_fail(VV_EFORMAT,
                           "%s: tensor '%s': 'shape' holds something other than a "
                           "non-negative integer",
                           path, name);
        if (__builtin_mul_overflow(nelem, d, &nelem))
            return vv_fail(VV_EFORMAT, "%s: tensor '%s': shape overflows", path, name);
        if (e->ndim < VV_ST_MAXDIM)
            e->shape[e->ndim] = (int64_t)d;
        e->ndim++;
    }

    uint64_t b, en, nbytes;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        get_uint(cJSON_GetArrayItem(offs, 0), &b) < 0 ||
        get_uint(cJSON_GetArrayItem(offs, 1), &en) < 0)
        return vv_fail(VV_EFORMAT,
                       "%s: tensor '%s': 'data_offsets' must be two non-negative integers", path,
                       name);
    if (en < b)
        return vv_fail(VV_EFORMAT,
                       "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] end before "
                       "they begin",
                       path, name, b, en);
    if (__builtin_mul_overflow(nelem, (uint64_t)e->esz, &nbytes))
        return vv_fail(VV_EFORMAT, "%s: tensor '%s': shape overflows", path, name);
    if (en - b != nbytes)
        return vv_fail(VV_EFORMAT,
                       "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 "] span %" PRIu64
                       " bytes but %" PRIu64 " %s elements need %" PRIu64,
                       path, name, b, en, en - b, nelem, e->dtype_name, nbytes);
    if (en > data_size)
        return vv_fail(VV_EFORMAT,
                       "%s: truncated: tensor '%s' ends at data byte %" PRIu64 " but only %" PRIu64
                       " bytes of data follow the header",
                       path, name, en, data_size);
    e->begin = b;
    e->end = en;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const st_entry *)a)->name, ((const st_entry *)b)->name);
}

static int by_offset(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* How to make the file vvd wants, for the torch.save message. */
#define ST_EXPORT_HINT                                                                             \
    "export it with vvd.export(module, input_shape) from the Python package, or "                  \
    "safetensors' save_file(model.state_dict(), \"model.safetensors\") "                           \
    "(from safetensors.torch import save_file)"

int vv__torch_check(const char *path, int fd, uint64_t fsize)
{
    /* A zip local file header: signature, 22 bytes of fields, the name's
     * length at byte 26, the extra field's at 28, the name from byte 30. */
    unsigned char b[30 + 256];
    size_t n = fsize < sizeof b ? (size_t)fsize : sizeof b;
    if (n < 9 || vv__pread_full(path, fd, b, n, 0) < 0)
        return 0; /* too short to tell: the caller's own checks report it */
    if (!memcmp(b, "PK\3\4", 4)) {
        size_t len = n >= 30 ? (size_t)(b[26] | b[27] << 8) : 0;
        const char *name = (const char *)b + 30;
        int torch = len >= 8 && 30 + len <= n && !memcmp(name + len - 8, "data.pkl", 8) &&
                    (len == 8 || name[len - 9] == '/');
        if (torch)
            return vv_fail(VV_EFORMAT,
                           "%s is a PyTorch torch.save file (zip archive with %.*s), not "
                           "safetensors: " ST_EXPORT_HINT,
                           path, (int)len, name);
        return vv_fail(VV_EFORMAT,
                       "%s is a zip archive (an .npz or another archive), not a .safetensors "
                       "file",
                       path);
    }
    if (b[0] == 0x80 && b[1] >= 2 && b[1] <= 5 && b[8] != '{')
        return vv_fail(VV_EFORMAT,
                       "%s is a PyTorch torch.save file (pickle protocol %d), not "
                       "safetensors: " ST_EXPORT_HINT,
                       path, b[1]);
    return 0;
}

/* Reads and validates the whole header of fd; on success h->e holds the
 * tensors sorted by data offset. */
static int header_read(const char *path, int fd, uint64_t fsize, st_header *h)
{
    unsigned char lenb[8];
    int rc;

    memset(h, 0, sizeof *h);
    if ((rc = vv__torch_check(path, fd, fsize)) < 0)
        return rc;
    if (fsize < 8)
        return vv_fail(VV_EFORMAT,
                       "%s: truncated: %" PRIu64 " bytes, shorter than the 8-byte header length "
                       "of a .safetensors file",
                       path, fsize);
    if ((rc = vv__pread_full(path, fd, lenb, 8, 0)) < 0)
        return rc;
    if (!memcmp(lenb, "\x93NUMPY", 6))
        return vv_fail(VV_EFORMAT, "%s: this is a .npy file, not a .safetensors file", path);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | lenb[i];
    if (hlen < 2)
        return vv_fail(VV_EFORMAT, "%s: .safetensors header length %" PRIu64 " is too small", path,
                       hlen);
    if (hlen > ST_MAX_HEADER)
        return vv_fail(VV_EFORMAT,
                       "%s: .safetensors header length %" PRIu64 " exceeds 100 MB (not a "
                       ".safetensors file?)",
                       path, hlen);
    if (hlen > fsize - 8)
        return vv_fail(VV_EFORMAT,
                       "%s: truncated: header length is %" PRIu64 " but only %" PRIu64
                       " bytes follow",
                       path, hlen, fsize - 8);

    /* A NUL-terminated copy, so that the JSON parser can never run off. */
    char *text = malloc(hlen + 1);
    if (!text)
        return vv_fail(VV_ENOMEM, "%s: out of memory for a %" PRIu64 "-byte header", path, hlen);
    if ((rc = vv__pread_full(path, fd, text, hlen, 8)) < 0) {
        free(text);
        return rc;
    }
    text[hlen] = 0;
    if (text[0] != '{') {
        free(text);
        return vv_fail(VV_EFORMAT, "%s: .safetensors header does not start with '{'", path);
    }
    /* JSON allows no raw control characters (cJSON would skip them). */
    for (uint64_t i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') {
            free(text);
            return vv_fail(VV_EFORMAT,
                           "%s: .safetensors header is not valid JSON (control character "
                           "0x%02x at byte %" PRIu64 ")",
                           path, ch, i);
        }
    }
    const char *end = NULL;
    h->root = cJSON_ParseWithLengthOpts(text, hlen, &end, 0);
    if (!h->root) {
        long at = end ? (long)(end - text) : -1;
        free(text);
        return vv_fail(VV_EFORMAT, "%s: .safetensors header is not valid JSON (near byte %ld)",
                       path, at);
    }
    for (const char *p = end; p < text + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            long at = (long)(p - text);
            free(text);
            header_free(h);
            return vv_fail(VV_EFORMAT,
                           "%s: .safetensors header has text after the JSON object (byte %ld)",
                           path, at);
        }
    free(text);
    if (!cJSON_IsObject(h->root)) {
        header_free(h);
        return vv_fail(VV_EFORMAT, "%s: .safetensors header is not a JSON object", path);
    }
    h->data_off = 8 + hlen;
    uint64_t data_size = fsize - h->data_off;

    int count = cJSON_GetArraySize(h->root);
    h->e = calloc(count > 0 ? (size_t)count : 1, sizeof *h->e);
    if (!h->e) {
        header_free(h);
        return vv_fail(VV_ENOMEM, "%s: out of memory", path);
    }
    int nmeta = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, h->root)
    {
        if (!strcmp(item->string, "__metadata__")) {
            int bad = !cJSON_IsObject(item) || nmeta++;
            for (const cJSON *m = bad ? NULL : item->child; m; m = m->next)
                bad |= !cJSON_IsString(m);
            if (bad) {
                header_free(h);
                return vv_fail(VV_EFORMAT, "%s: '__metadata__' must be one object of string values",
                               path);
            }
            continue;
        }
        if ((rc = parse_entry(path, item, data_size, &h->e[h->n])) < 0) {
            header_free(h);
            return rc;
        }
        h->n++;
    }

    qsort(h->e, (size_t)h->n, sizeof *h->e, by_name);
    for (int i = 1; i < h->n; i++)
        if (!strcmp(h->e[i - 1].name, h->e[i].name)) {
            rc = vv_fail(VV_EFORMAT, "%s: tensor '%s' appears twice", path, h->e[i].name);
            header_free(h);
            return rc;
        }
    qsort(h->e, (size_t)h->n, sizeof *h->e, by_offset);
    for (int i = 1; i < h->n; i++)
        if (h->e[i].begin < h->e[i - 1].end) {
            rc = vv_fail(VV_EFORMAT,
                         "%s: the data of tensors '%s' [%" PRIu64 ", %" PRIu64 ") and '%s' "
                         "[%" PRIu64 ", %" PRIu64 ") overlap",
                         path, h->e[i - 1].name, h->e[i - 1].begin, h->e[i - 1].end, h->e[i].name,
                         h->e[i].begin, h->e[i].end);
            header_free(h);
            return rc;
        }
    return 0;
}

/* "a, b, c" (shortened with "..." to fit cap). */
static void list_names(const st_header *h, char *buf, size_t cap)
{
    size_t k = 0;
    buf[0] = 0;
    for (int i = 0; i < h->n; i++) {
        size_t need = strlen(h->e[i].name) + 2;
        if (k + need + 4 >= cap) {
            snprintf(buf + k, cap - k, "...");
            return;
        }
        k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? ", " : "", h->e[i].name);
    }
}

int vv__st_probe(const char *path, int fd, uint64_t fsize, const char *name, vv__tinfo *ti)
{
    st_header h;
    char names[400];
    int rc;

    memset(ti, 0, sizeof *ti);
    if ((rc = header_read(path, fd, fsize, &h)) < 0)
        return rc;
    const st_entry *e = NULL;
    if (!name) {
        list_names(&h, names, sizeof names);
        if (h.n == 1)
            e = &h.e[0];
        else if (h.n == 0)
            rc = vv_fail(VV_EINVAL, "%s: the file holds no tensors", path);
        else
            rc = vv_fail(VV_EINVAL, "%s: the file holds %d tensors; name one of: %s", path, h.n,
                         names);
    } else {
        for (int i = 0; i < h.n && !e; i++)
            if (!strcmp(h.e[i].name, name))
                e = &h.e[i];
        if (!e) {
            list_names(&h, names, sizeof names);
            rc = vv_fail(VV_EINVAL, "%s: no tensor named '%s' (has: %s)", path, name, names);
        }
    }
    if (e && !e->dtype)
        rc = vv_fail(VV_EDTYPE, "%s: tensor '%s' has dtype %s; need F32, F64, F16, BF16 or I64",
                     path, e->name, e->dtype_name);
    else if (e && (e->ndim < 1 || e->ndim > 2))
        rc = vv_fail(VV_ESHAPE, "%s: tensor '%s' is %d-D; need a 1-D or 2-D tensor", path, e->name,
                     e->ndim);
    if (e && rc == 0) {
        ti->dtype = e->dtype;
        ti->ndim = e->ndim;
        ti->shape[0] = e->shape[0];
        ti->shape[1] = e->ndim == 2 ? e->shape[1] : 1;
        ti->offset = h.data_off + e->begin;
        ti->nbytes = e->end - e->begin;
    }
    header_free(&h);
    return rc;
}

int vv_safetensors_read(const char *path, const char *name, vv_array *out)
{
    int fd, rc;
    uint64_t fsize;
    vv__tinfo ti;
    void *raw = NULL, *data = NULL;

    if (!out)
        return vv_fail(VV_EINVAL, "%s: vv_safetensors_read: out is NULL", path ? path : "(null)");
    memset(out, 0, sizeof *out);
    if (!path)
        return vv_fail(VV_EINVAL, "vv_safetensors_read: path is NULL");
    if ((rc = vv__open_ro(path, &fd, &fsize)) < 0)
        return rc;
    if ((rc = vv__st_probe(path, fd, fsize, name, &ti)) < 0)
        goto done;
    size_t nelem = (size_t)ti.shape[0] * (size_t)ti.shape[1];
    int half = ti.dtype == VV_F16 || ti.dtype == VV_BF16;
    if (!(raw = malloc(ti.nbytes ? ti.nbytes : 1)) ||
        (half && !(data = malloc(nelem ? nelem * sizeof(float) : 1)))) {
        rc = vv_fail(VV_ENOMEM, "%s: out of memory for %" PRIu64 " bytes of data", path, ti.nbytes);
        goto done;
    }
    if ((rc = vv__pread_full(path, fd, raw, ti.nbytes, ti.offset)) < 0)
        goto done;
    if (half) {
        const uint16_t *s = raw;
        float *d = data;
        for (size_t i = 0; i < nelem; i++)
            d[i] = ti.dtype == VV_F16 ? vv__f16_to_f32(s[i]) : vv__bf16_to_f32(s[i]);
        free(raw);
        raw = NULL;
        out->dtype = VV_F32;
    } else {
        data = raw;
        raw = NULL;
        out->dtype = ti.dtype;
    }
    out->ndim = ti.ndim;
    out->shape[0] = ti.shape[0];
    out->shape[1] = ti.shape[1];
    out->data = data;
    data = NULL;
done:
    free(raw);
    free(data);
    close(fd);
    return rc;
}

int vv_safetensors_load_f32(const char *path, vv_st_f32 **out, int *count)
{
    int fd, rc;
    uint64_t fsize;
    st_header h;
    vv_st_f32 *t = NULL;
    void *raw = NULL;

    *out = NULL;
    *count = 0;
    if ((rc = vv__open_ro(path, &fd, &fsize)) < 0)
        return rc;
    if ((rc = header_read(path, fd, fsize, &h)) < 0) {
        close(fd);
        return rc;
    }
    if (!(t = calloc((size_t)(h.n ? h.n : 1), sizeof *t))) {
        rc = vv_fail(VV_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < h.n; i++) {
        const st_entry *e = &h.e[i];
        if (!e->dtype) {
            rc = vv_fail(VV_EDTYPE, "%s: tensor '%s' has dtype %s; need F32, F64, F16, BF16 or I64",
                         path, e->name, e->dtype_name);
            goto done;
        }
        if (e->ndim > VV_ST_MAXDIM) {
            rc = vv_fail(VV_ESHAPE, "%s: tensor '%s' is %d-D; at most %d dimensions are supported",
                         path, e->name, e->ndim, VV_ST_MAXDIM);
            goto done;
        }
        size_t nelem = (size_t)((e->end - e->begin) / e->esz);
        t[i].ndim = e->ndim;
        t[i].numel = (int64_t)nelem;
        for (int d = 0; d < e->ndim; d++)
            t[i].shape[d] = e->shape[d];
        if (!(t[i].name = strdup(e->name)) || !(raw = malloc(e->end - e->begin + 1)) ||
            !(t[i].data = malloc(nelem ? nelem * sizeof(float) : 1))) {
            rc = vv_fail(VV_ENOMEM, "%s: out of memory for tensor '%s'", path, e->name);
            goto done;
        }
        *count = i + 1;
        if ((rc = vv__pread_full(path, fd, raw, e->end - e->begin, h.data_off + e->begin)) < 0)
            goto done;
        float *d = t[i].data;
        for (size_t j = 0; j < nelem; j++) {
            const unsigned char *p = (const unsigned char *)raw + j * e->esz;
            switch (e->dtype) {
            case VV_F32:
                memcpy(&d[j], p, 4);
                break;
            case VV_F64: {
                double v;
                memcpy(&v, p, 8);
                d[j] = (float)v;
                break;
            }
            case VV_F16: {
                uint16_t v;
                memcpy(&v, p, 2);
                d[j] = vv__f16_to_f32(v);
                break;
            }
            case VV_BF16: {
                uint16_t v;
                memcpy(&v, p, 2);
                d[j] = vv__bf16_to_f32(v);
                break;
            }
            case VV_I64: {
                int64_t v;
                memcpy(&v, p, 8);
                d[j] = (float)v;
                break;
            }
            }
        }
        free(raw);
        raw = NULL;
    }
    *count = h.n;
    *out = t;
    t = NULL;
done:
    if (t)
        vv_st_f32_free(t, *count);
    if (rc < 0)
        *count = 0;
    free(raw);
    header_free(&h);
    close(fd);
    return rc;
}

void vv_st_f32_free(vv_st_f32 *t, int count)
{
    if (!t)
        return;
    for (int i = 0; i < count; i++) {
        free(t[i].name);
        free(t[i].data);
    }
    free(t);
}

int vv_safetensors_names(const char *path, char ***names, int *count)
{
    int fd, rc;
    uint64_t fsize;
    st_header h;

    if (!names || !count)
        return vv_fail(VV_EINVAL, "%s: vv_safetensors_names: NULL output", path ? path : "(null)");
    *names = NULL;
    *count = 0;
    if (!path)
        return vv_fail(VV_EINVAL, "vv_safetensors_names: path is NULL");
    if ((rc = vv__open_ro(path, &fd, &fsize)) < 0)
        return rc;
    rc = header_read(path, fd, fsize, &h);
    close(fd);
    if (rc < 0)
        return rc;
    char **v = calloc(h.n > 0 ? (size_t)h.n : 1, sizeof *v);
    if (!v) {
        header_free(&h);
        return vv_fail(VV_ENOMEM, "%s: out of memory", path);
    }
    for (int i = 0; i < h.n; i++)
        if (!(v[i] = strdup(h.e[i].name))) {
            vv_safetensors_names_free(v, i);
            header_free(&h);
            return vv_fail(VV_ENOMEM, "%s: out of memory", path);
        }
    *names = v;
    *count = h.n;
    header_free(&h);
    return 0;
}

void vv_safetensors_names_free(char **names, int count)
{
    if (!names)
        return;
    for (int i = 0; i < count; i++)
        free(names[i]);
    free(names);
}
