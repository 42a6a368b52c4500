/* json_check.h - checks a parsed JSON document beyond what cJSON checks.
 *
 * cJSON accepts any bytes inside strings and keeps every member of an object
 * whose key repeats; a document stored or echoed as it came would then carry
 * invalid UTF-8 into every JSON answer that includes it, and a repeated key
 * would mean whichever copy a reader happens to look up.  Every JSON body of
 * the HTTP API and every job spec goes through json_check_tree() once, right
 * after parsing.
 */
#ifndef VV_JSON_CHECK_H
#define VV_JSON_CHECK_H

#include <cjson/cJSON.h>
#include <stddef.h>

/* Checks the whole tree under root: every key and every string value must
 * be valid UTF-8 (RFC 3629: no stray continuation byte, no overlong form, no
 * surrogate, nothing above U+10FFFF), and no object at any depth may hold
 * the same key twice.  Returns 0 and sets field to "" when the tree passes.
 * Otherwise returns VV_EJSON (invalid UTF-8: the text is not JSON, RFC 8259
 * section 8.1) or VV_EINVAL (a key given twice, the code the spec parsers
 * use for a repeated top-level field), records a detail with vv_fail() and
 * writes to field (fsz bytes, may be 0) the JSON pointer of the offending
 * value (RFC 6901: "~" as "~0", "/" as "~1"; the second copy of a repeated
 * key; the string value or the member whose key is invalid).  Bytes of the
 * pointer's keys that are not valid UTF-8 are written as \xNN, so the
 * pointer is always valid UTF-8; a pointer longer than fsz - 1 bytes is cut
 * at a character boundary.  Thread-safe; root is not modified. */
int json_check_tree(const cJSON *root, char *field, size_t fsz);

#endif
