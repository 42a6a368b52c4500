/* vv/suggest.h - "did you mean": the closest of a list of names to a word.
 *
 * Used by the daemon for unknown spec fields and by vvctl for misspelled
 * commands, subcommands, flags and fields.  Distances are the optimal string
 * alignment distance (Levenshtein with adjacent transpositions), compared
 * case-insensitively.  Pure functions: thread-safe, no allocation.
 */
#ifndef VV_SUGGEST_H
#define VV_SUGGEST_H

#include <stddef.h>

/* Edit distance between a and b (case-insensitive), or a value above 64
 * when either is longer than 64 bytes. */
int vv_edit_distance(const char *a, const char *b);

/* The candidate closest to word, or NULL when none is close enough: a
 * candidate qualifies at distance <= max(1, strlen(word) / 3) (2 at most
 * for words of 6 or more, 3 for 9 or more), or when one is a prefix of the
 * other and the shorter has at least 3 characters.  Ties go to the earlier
 * candidate.  cands has n entries (NULL entries are skipped); n < 0 means
 * the list ends at a NULL. */
const char *vv_closest(const char *word, const char *const *cands, int n);

/* As vv_closest, over a list written "a, b, c" (separators: comma, space,
 * '|'); the result is copied into out (cap bytes) and out is returned, or
 * NULL when nothing is close. */
const char *vv_closest_in_list(const char *word, const char *list, char *out, size_t cap);

#endif
