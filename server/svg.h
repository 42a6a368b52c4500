/* svg.h - small self-contained SVG figures for job artifacts. */
#ifndef VV_SVG_H
#define VV_SVG_H

#include <stdint.h>
#include <stdio.h>

/* One histogram panel: integer counts, with vertical reference lines. */
typedef struct svg_hist {
    const char *title;
    const int64_t *values; /* the observations */
    int n;
    int64_t lower, upper;  /* drawn as red lines (or noted when off the axis) */
} svg_hist;

/* Writes panels side by side (shared y axis) to f; x label under each.
 * Returns 0 or VV_EIO. */
int svg_histograms(FILE *f, const svg_hist *panels, int npanels, const char *xlabel);

#endif
