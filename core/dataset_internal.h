/* dataset_internal.h - the data set as dataset.c (readers) builds it and
 * dataset_resize.c (preprocessing) reads it.  Not part of libvv's public
 * interface. */
#ifndef VV_DATASET_INTERNAL_H
#define VV_DATASET_INTERNAL_H

#include "vv/dataset.h"

#include <stdint.h>

/* Images are n x c x h x w in one array, uint8 (u8 set, f32 NULL) or
 * float32 (f32 set, u8 NULL).  Nothing changes after the open returns,
 * which is what makes concurrent batches safe. */
struct vv_dataset {
    int64_t n;
    int c, h, w;
    int classes;
    uint8_t *u8;
    float *f32;
    int32_t *labels;
};

#endif
