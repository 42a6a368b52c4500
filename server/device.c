/* device.c - the compute devices of the process (device.h). */
#include "device.h"

#include "vv/err.h"
#include "vv/log.h"
#ifdef VV_HAVE_CUDA
#include "vv/backend_cuda.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static vv_backend *dev;       /* NULL: the CPU */
static char dev_name[16] = "cpu";

static int parse_index(const char *s, const char *prefix, int *idx)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) || !s[n])
        return 0;
    int v = 0;
    for (const char *p = s + n; *p; p++) {
        if (*p < '0' || *p > '9' || v > 6)
            return 0;
        v = v * 10 + (*p - '0');
    }
    if (v >= 64)
        return 0;
    *idx = v;
    return 1;
}

int device_name_ok(const char *name)
{
    int i;
    return name && (!strcmp(name, "cpu") || !strcmp(name, "auto") ||
                    parse_index(name, "cuda:", &i) || parse_index(name, "sim:", &i));
}

const char *device_names(void) { return "cpu, auto, cuda:N, sim:N"; }

static int open_sim(void)
{
    vv_sim_opts o = {0};
    const char *m = getenv("VVD_SIM_MEMORY"), *f = getenv("VVD_SIM_FAIL_AFTER");
    if (m)
        o.memory = (size_t)strtoull(m, NULL, 10);
    if (f)
        o.fail_after = strtoll(f, NULL, 10);
    return vv_backend_sim_open(&o, &dev);
}

int devices_open(const char *name)
{
    int idx = 0;
    if (!name || !strcmp(name, "cpu"))
        return 0;
    if (parse_index(name, "sim:", &idx)) {
        int rc = open_sim();
        if (rc == 0)
            snprintf(dev_name, sizeof dev_name, "sim:%d", idx);
        return rc;
    }
    int is_auto = !strcmp(name, "auto");
    if (!is_auto && !parse_index(name, "cuda:", &idx))
        return vv_fail(VV_EINVAL, "unknown device '%.64s' (one of %s)", name, device_names());
#ifdef VV_HAVE_CUDA
    int rc = vv_backend_cuda_open(idx, &dev);
    if (rc == 0) {
        snprintf(dev_name, sizeof dev_name, "cuda:%d", idx);
        return 0;
    }
    dev = NULL;
    if (!is_auto) {
        char why[512];
        snprintf(why, sizeof why, "%s", vv_err_detail());
        return vv_fail(rc, "cuda:%d: %s", idx, why);
    }
    VV_INFO("device", NULL, "auto: no usable CUDA device (%s); computing on the CPU",
            vv_err_detail());
    return 0;
#else
    if (!is_auto)
        return vv_fail(VV_EDEVICE, "%s: this vvd was built without CUDA (only cpu, sim:N)",
                       name);
    return 0;
#endif
}

void devices_close(void)
{
    if (dev)
        dev->ops->close(dev);
    dev = NULL;
    snprintf(dev_name, sizeof dev_name, "cpu");
}

const char *devices_default(void) { return dev_name; }

int devices_get(const char *name, vv_backend **be)
{
    *be = NULL;
    if (!name || !name[0] || !strcmp(name, "auto") || !strcmp(name, dev_name)) {
        *be = dev ? dev : vv_backend_cpu();
        return 0;
    }
    if (!strcmp(name, "cpu")) {
        *be = vv_backend_cpu();
        return 0;
    }
    return vv_fail(VV_EDEVICE, "device %.64s is not available: this vvd computes on %s%s",
                   name, dev ? "cpu and " : "", dev_name);
}

int devices_lost(void) { return dev && dev->ops->lost && dev->ops->lost(dev); }

cJSON *devices_describe(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", dev_name);
    cJSON_AddStringToObject(o, "kind", dev ? dev->ops->name : "cpu");
    if (dev && dev->ops->info) {
        char model[256] = "";
        size_t fr = 0, tot = 0;
        if (dev->ops->info(dev, model, sizeof model, &fr, &tot) == 0) {
            cJSON_AddStringToObject(o, "model", model);
            cJSON_AddNumberToObject(o, "memory_total", (double)tot);
            cJSON_AddNumberToObject(o, "memory_free", (double)fr);
        }
    }
    cJSON_AddBoolToObject(o, "lost", devices_lost());
    return o;
}
