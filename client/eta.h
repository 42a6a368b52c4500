/* eta.h - the ETA of `vvctl watch`: seconds until a run's rel_gap reaches its
 * tol, from the recent slope of log(rel_gap) against time.
 *
 * Pure functions without global state (thread-safe, no allocation); this
 * header needs nothing else of vvctl, so the unit test links eta.c alone.
 */
#ifndef VVCTL_ETA_H
#define VVCTL_ETA_H

/* One observation: run time t (seconds) and lg = ln(rel_gap). */
typedef struct vc_eta_sample {
    double t, lg;
} vc_eta_sample;

/* Limits of an estimate. */
enum {
    VC_ETA_MIN_SAMPLES = 4, /* fewer samples in the window: no estimate */
    VC_ETA_MAX_FACTOR = 10  /* an estimate above this times the elapsed time is refused */
};

/* Seconds until rel_gap reaches tol, or -1 when there is no believable
 * estimate.  s holds n samples, oldest first (the recent window); rel_gap
 * is the latest value, elapsed the run's time so far and max_seconds its
 * time limit (0: none).  Returns 0 when rel_gap <= tol already.  The
 * estimate is a least-squares line through the samples; it is refused (-1)
 * when there are fewer than VC_ETA_MIN_SAMPLES samples, when they span
 * less than a tenth of a second, when the slope is not clearly negative
 * (not below zero by more than twice its standard error, or log(rel_gap)
 * would fall by less than 1% over the window), when the answer exceeds
 * VC_ETA_MAX_FACTOR times the elapsed time, or when it would end after
 * max_seconds. */
double vc_eta_estimate(const vc_eta_sample *s, int n, double rel_gap, double tol, double elapsed,
                       double max_seconds);

#endif
