/* eta.c - the ETA of `vvctl watch` (eta.h). */
#include "eta.h"

#include <math.h>

double vc_eta_estimate(const vc_eta_sample *s, int n, double rel_gap, double tol, double elapsed,
                       double max_seconds)
{
    if (rel_gap > 0 && tol > 0 && rel_gap <= tol)
        return 0;
    if (n < VC_ETA_MIN_SAMPLES || !(rel_gap > 0) || !(tol > 0) || !(elapsed > 0))
        return -1;
    double span = s[n - 1].t - s[0].t;
    if (!(span >= 0.1))
        return -1;
    double mt = 0, ml = 0;
    for (int i = 0; i < n; i++) {
        mt += s[i].t;
        ml += s[i].lg;
    }
    mt /= n;
    ml /= n;
    double stt = 0, stl = 0;
    for (int i = 0; i < n; i++) {
        stt += (s[i].t - mt) * (s[i].t - mt);
        stl += (s[i].t - mt) * (s[i].lg - ml);
    }
    if (!(stt > 0))
        return -1;
    double slope = stl / stt, icpt = ml - slope * mt, sse = 0;
    for (int i = 0; i < n; i++) {
        double r = s[i].lg - (icpt + slope * s[i].t);
        sse += r * r;
    }
    /* The slope's standard error; a perfect fit has none. */
    double se = n > 2 ? sqrt(sse / (n - 2) / stt) : 0;
    if (!(slope < 0) || slope > -2 * se || -slope * span < 0.01)
        return -1;
    double left = (log(tol) - log(rel_gap)) / slope;
    if (!isfinite(left) || left < 0 || left > VC_ETA_MAX_FACTOR * elapsed)
        return -1;
    if (max_seconds > 0 && elapsed + left > max_seconds)
        return -1;
    return left;
}
