/*
 * json.h - msgpack values as jansson values, for code that builds JSON
 * documents of its own (the broker's IG commands).  Kept apart from
 * cc_proto.h, an installed header, so that its includers need not have
 * jansson.
 */
#ifndef CC_JSON_H
#define CC_JSON_H

#include <jansson.h>
#include <msgpack.h>

#include "cc_proto.h"

/*
 * A msgpack value as a new jansson value; the caller owns the reference
 * (json_decref).  Nil, booleans, integers, floats, strings, arrays and
 * maps with string keys convert to their JSON kind; integers stay
 * integers and floats reals, so nothing is rounded.
 *
 * Returns NULL, without saying which, when out of memory or when the value
 * holds anything JSON cannot hold exactly:
 *  - a binary (bin) or extension (ext, timestamps included) value, at any
 *    depth: refused rather than skipped or encoded, so that a document is
 *    never silently missing a part or carrying a form its reader must
 *    guess;
 *  - a map key that is not a string, or a key repeated in one map;
 *  - a string or key that is not UTF-8;
 *  - a positive integer above INT64_MAX (jansson's json_int_t);
 *  - an infinite or NaN float;
 *  - containers nested more than 64 deep.
 */
json_t	*proto_object_to_jansson(const msgpack_object *) CC_WUR;

#endif /* CC_JSON_H */
