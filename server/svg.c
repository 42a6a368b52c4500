/* svg.c - histograms as SVG, in the style of the paper's Figs. 3-5. */
#include "svg.h"

#include "vv/err.h"

#include <errno.h>
#include <string.h>

enum { PW = 300, PH = 220, ML = 50, MR = 15, MT = 35, MB = 45 };

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

int svg_histograms(FILE *f, const svg_hist *p, int np, const char *xlabel)
{
    int W = np * (PW + ML + MR), H = PH + MT + MB;
    /* Shared y: the tallest bin of all panels. */
    int ymax = 1;
    for (int i = 0; i < np; i++) {
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (int j = 0; j < p[i].n; j++) {
            lo = p[i].values[j] < lo ? p[i].values[j] : lo;
            hi = p[i].values[j] > hi ? p[i].values[j] : hi;
        }
        for (int64_t v = lo; p[i].n && v <= hi; v++) {
            int c = 0;
            for (int j = 0; j < p[i].n; j++)
                c += p[i].values[j] == v;
            ymax = c > ymax ? c : ymax;
        }
    }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    for (int i = 0; i < np; i++) {
        const svg_hist *h = &p[i];
        int x0 = i * (PW + ML + MR) + ML, y0 = MT;
        int64_t lo = INT64_MAX, hi = INT64_MIN;
        for (int j = 0; j < h->n; j++) {
            lo = h->values[j] < lo ? h->values[j] : lo;
            hi = h->values[j] > hi ? h->values[j] : hi;
        }
        if (h->n == 0)
            lo = hi = h->lower;
        /* The x range covers the data and the lower bound, and the upper
         * bound when it is not far away. */
        int64_t xa = lo < h->lower ? lo : h->lower, xb = hi;
        int upper_in = h->upper <= hi + (hi - xa + 1) * 2;
        if (upper_in && h->upper > xb)
            xb = h->upper;
        xa -= 1;
        xb += 2;
        double sx = (double)PW / (double)(xb - xa), sy = (double)PH / (double)ymax;
        fprintf(f, "<g>\n<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"13\">",
                x0 + PW / 2, MT - 12);
        esc(f, h->title);
        fprintf(f, "</text>\n<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
                   "stroke=\"#444\"/>\n",
                x0, y0, PW, PH);
        for (int64_t v = lo; h->n && v <= hi; v++) {
            int c = 0;
            for (int j = 0; j < h->n; j++)
                c += h->values[j] == v;
            if (!c)
                continue;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#1f77b4\">"
                       "<title>%lld: %d</title></rect>\n",
                    x0 + (double)(v - xa) * sx, y0 + PH - c * sy, sx > 2 ? sx - 1 : sx, c * sy,
                    (long long)v, c);
        }
        /* Bounds. */
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"red\" "
                   "stroke-width=\"2\"><title>lower bound %lld</title></line>\n",
                x0 + (double)(h->lower - xa) * sx, y0, x0 + (double)(h->lower - xa) * sx, y0 + PH,
                (long long)h->lower);
        if (upper_in)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"red\" "
                       "stroke-width=\"2\"><title>upper bound %lld</title></line>\n",
                    x0 + (double)(h->upper + 1 - xa) * sx, y0,
                    x0 + (double)(h->upper + 1 - xa) * sx, y0 + PH, (long long)h->upper);
        else
            fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"red\">upper bound %lld "
                       "&#8594;</text>\n",
                    x0 + PW - 4, y0 + 14, (long long)h->upper);
        /* Axes: x ticks at about 5 places, y at 0 and the maximum. */
        int64_t step = (xb - xa) / 5 > 0 ? (xb - xa) / 5 : 1;
        for (int64_t v = xa + 1; v < xb; v += step)
            fprintf(f, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%lld</text>\n",
                    x0 + (double)(v - xa + 0.5) * sx, y0 + PH + 14, (long long)v);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">0</text>\n", x0 - 4, y0 + PH);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%d</text>\n", x0 - 4, y0 + 10, ymax);
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", x0 + PW / 2, y0 + PH + 32);
        esc(f, xlabel);
        fputs("</text>\n</g>\n", f);
    }
    fputs("</svg>\n", f);
    return ferror(f) ? vv_fail(VV_EIO, "writing the figure: %s", strerror(errno)) : 0;
}
