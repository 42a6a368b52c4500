/* test_vvctl_eta.c - the ETA of `vvctl watch` (client/eta.c): believable
 * for a steady geometric decay of rel_gap, refused (-1) when log(rel_gap)
 * is flat, rising, noisy without a clear trend, too new, or when the answer
 * would be absurd next to the elapsed time or the run's max_seconds. */
#include "eta.h"
#include "tap.h"

#include <math.h>

enum { N = 32 };

/* n samples from t0 to t1 of ln(rel_gap) = a + b t + noise * (-1)^i. */
static void line(vc_eta_sample *s, int n, double t0, double t1, double a, double b, double noise)
{
    for (int i = 0; i < n; i++) {
        double t = t0 + (t1 - t0) * i / (n - 1);
        s[i].t = t;
        s[i].lg = a + b * t + (i % 2 ? noise : -noise);
    }
}

int main(void)
{
    vc_eta_sample s[N];

    /* rel_gap = e^(-t) from t = 2 to 10: reaching 1e-6 from e^-10 takes
     * ln(1e-6) = -13.8, i.e. 3.8 more seconds. */
    line(s, N, 2, 10, 0, -1, 0);
    double gap = exp(-10.0), want = -log(1e-6) - 10;
    double e = vc_eta_estimate(s, N, gap, 1e-6, 10, 0);
    CHECKF(tap_close(e, want, 1e-9), "a clean geometric decay: ETA %.4f s (want %.4f)", e, want);
    CHECK(vc_eta_estimate(s, N, gap, 1e-6, 10, 13) < 0,
          "an ETA that would end after max_seconds is refused");
    CHECK(tap_close(vc_eta_estimate(s, N, gap, 1e-6, 10, 20), want, 1e-9),
          "an ETA within max_seconds is kept");
    CHECK(vc_eta_estimate(s, N, 1e-7, 1e-6, 10, 0) == 0, "rel_gap already below tol: ETA 0");

    /* The same decay with a little noise still gives an estimate. */
    line(s, N, 2, 10, 0, -1, 0.05);
    e = vc_eta_estimate(s, N, gap, 1e-6, 10, 0);
    CHECKF(e > 0 && fabs(e - want) < 0.5, "a noisy decay: ETA %.3f s (want about %.3f)", e, want);

    /* Flat, rising and trendless noise: no estimate. */
    line(s, N, 2, 10, -3, 0, 0);
    CHECK(vc_eta_estimate(s, N, exp(-3.0), 1e-6, 10, 0) < 0, "flat log(rel_gap): no ETA");
    line(s, N, 2, 10, -3, 0.1, 0);
    CHECK(vc_eta_estimate(s, N, exp(-2.0), 1e-6, 10, 0) < 0, "rising log(rel_gap): no ETA");
    line(s, N, 2, 10, -3, -0.01, 1.0);
    CHECK(vc_eta_estimate(s, N, exp(-3.1), 1e-6, 10, 0) < 0,
          "noise much larger than a slight downward trend: no ETA");

    /* The case that showed 31 hours: a gap creeping down very slowly, far
     * from tol (adam_prox on a hard problem at tol 1e-12). */
    line(s, N, 50, 60, log(1e-3), -1e-4, 0);
    e = vc_eta_estimate(s, N, 1e-3 * exp(-6e-3), 1e-12, 60, 0);
    CHECKF(e < 0, "a slope that would need %.0f s after 60 s: no ETA",
           (log(1e-12) - log(1e-3)) / -1e-4);
    /* A believable but long estimate: just under 10x the elapsed time. */
    line(s, N, 50, 60, 0, -0.05, 0);
    double g = exp(-3.0), left = (log(1e-12) - log(g)) / -0.05;
    e = vc_eta_estimate(s, N, g, 1e-12, 60, 0);
    CHECKF(left < VC_ETA_MAX_FACTOR * 60 && tap_close(e, left, 1e-9),
           "an ETA of %.0f s after 60 s is shown", left);
    e = vc_eta_estimate(s, N, g, 1e-12, left / VC_ETA_MAX_FACTOR - 1, 0);
    CHECK(e < 0, "the same ETA after less than a tenth of it elapsed is refused");

    /* Too few samples, or samples too close in time. */
    line(s, 3, 2, 10, 0, -1, 0);
    CHECK(vc_eta_estimate(s, 3, gap, 1e-6, 10, 0) < 0, "3 samples: no ETA");
    line(s, N, 0.01, 0.05, 0, -100, 0);
    CHECK(vc_eta_estimate(s, N, exp(-5.0), 1e-6, 0.05, 0) < 0, "samples over 0.04 s: no ETA");

    /* Nonsense input never gives a number. */
    line(s, N, 2, 10, 0, -1, 0);
    CHECK(vc_eta_estimate(s, N, NAN, 1e-6, 10, 0) < 0, "rel_gap NaN: no ETA");
    CHECK(vc_eta_estimate(s, N, gap, 0, 10, 0) < 0, "tol 0: no ETA");
    s[5].lg = NAN;
    CHECK(vc_eta_estimate(s, N, gap, 1e-6, 10, 0) < 0, "a NaN sample: no ETA");
    return tap_done();
}
