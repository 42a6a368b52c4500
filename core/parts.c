/* parts.c - work split over threads (parts.h). */
#include "parts.h"

#include <pthread.h>

typedef struct part {
    void (*fn)(void *ctx, int p);
    void *ctx;
    int p;
    pthread_t tid;
    int started;
} part;

static void *part_main(void *a)
{
    part *pa = a;
    pa->fn(pa->ctx, pa->p);
    return NULL;
}

void vv__run_parts(int parts, void (*fn)(void *ctx, int p), void *ctx)
{
    part pa[VV_PARTS_MAX];
    for (int p = 1; p < parts && p < VV_PARTS_MAX; p++) {
        pa[p] = (part){fn, ctx, p, 0, 0};
        pa[p].started = pthread_create(&pa[p].tid, NULL, part_main, &pa[p]) == 0;
    }
    fn(ctx, 0);
    for (int p = 1; p < parts; p++) {
        if (p < VV_PARTS_MAX && pa[p].started)
            pthread_join(pa[p].tid, NULL);
        else
            fn(ctx, p);
    }
}
