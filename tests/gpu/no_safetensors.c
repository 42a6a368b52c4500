/* no_safetensors.c - for tests/gpu/device-check.sh, which builds vvd's core
 * on a GPU machine that may lack libcjson (the .safetensors header parser's
 * dependency): the safetensors entry points core/array.c calls, refusing.
 * The device check reads no .safetensors file (it writes some:
 * core/safetensors_write.c).  Not part of vvd's build. */
#include "array_internal.h"
#include "vv/err.h"

int vv__st_probe(const char *path, int fd, uint64_t fsize, const char *tensor, vv__tinfo *ti)
{
    (void)fd;
    (void)fsize;
    (void)tensor;
    (void)ti;
    return vv_fail(VV_EFORMAT, "%s: .safetensors files are not read by the device check", path);
}

/* No torch.save file is read either: nothing to recognise. */
int vv__torch_check(const char *path, int fd, uint64_t fsize)
{
    (void)path;
    (void)fd;
    (void)fsize;
    return 0;
}

/* Nor are a model's weights loaded (the forward check writes its own). */
int vv_safetensors_load_f32(const char *path, vv_st_f32 **out, int *count)
{
    *out = NULL;
    *count = 0;
    return vv_fail(VV_EFORMAT, "%s: .safetensors files are not read by the device check", path);
}

void vv_st_f32_free(vv_st_f32 *t, int count)
{
    (void)t;
    (void)count;
}
