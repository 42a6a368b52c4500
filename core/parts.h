/* parts.h - work split over threads (core's internal helper). */
#ifndef VV_PARTS_H
#define VV_PARTS_H

/* At most this many parts (more are run by the calling thread, in order,
 * after part 0). */
#define VV_PARTS_MAX 16

/* Runs fn(ctx, p) for every p in [0, parts): part 0 on the calling thread,
 * the others each on a thread of its own; a part whose thread cannot start
 * runs on the calling thread after part 0.  Returns when all are done. */
void vv__run_parts(int parts, void (*fn)(void *ctx, int p), void *ctx);

#endif
