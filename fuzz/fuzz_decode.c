/*
 * fuzz_decode.c - libFuzzer harness for the msgpack decoder and validator.
 *
 * A frame is peer input: proto_decode must refuse it cleanly or return a
 * message that re-encodes to a frame proto_decode accepts again and that
 * re-encodes to the very same bytes (the canonical form is a fixed point).
 * An accepted message also goes out as JSON, comes back through
 * proto_from_json and must give the same JSON, and a record is stripped
 * for a category set the input picks, as the broker does on delivery.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_fail(const char *, const struct cc_error *)
		    __attribute__((noreturn));
static void	check_error(const struct cc_error *);
static void	check_strip(const struct cc_msg *, cc_catset);

static void
fuzz_fail(const char *what, const struct cc_error *err)
{
	if (err != NULL)
		fprintf(stderr, "fuzz_decode: %s: %s field=%s detail=%s\n",
		    what, cc_err_name(err->code), err->field, err->detail);
	else
		fprintf(stderr, "fuzz_decode: %s\n", what);
	abort();
}

/* A refusal names a known code and keeps its strings terminated. */
static void
check_error(const struct cc_error *err)
{
	if (err->code <= CC_OK || err->code >= ERR__COUNT)
		fuzz_fail("refusal without an error code", NULL);
	if (memchr(err->field, '\0', sizeof(err->field)) == NULL ||
	    memchr(err->detail, '\0', sizeof(err->detail)) == NULL ||
	    memchr(err->re, '\0', sizeof(err->re)) == NULL)
		fuzz_fail("unterminated error string", NULL);
}

/* Strip as delivery does; what is withheld was present and not allowed. */
static void
check_strip(const struct cc_msg *msg, cc_catset allowed)
{
	msgpack_sbuffer	 sbuf;
	msgpack_packer	 pk;
	msgpack_unpacked up;
	cc_catset	 wb = 0, ws = 0, present;
	size_t		 off = 0;

	present = proto_categories_present(msg);
	msgpack_sbuffer_init(&sbuf);
	msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
	if (proto_pack_stripped_subject(&pk, msg, allowed, &ws) != 0 ||
	    proto_pack_stripped_body(&pk, msg, allowed, &wb) != 0)
		fuzz_fail("stripping failed", NULL);
	if ((wb | ws) & ~present)
		fuzz_fail("withheld a category not present", NULL);
	if ((wb | ws) & allowed)
		fuzz_fail("withheld an allowed category", NULL);
	msgpack_unpacked_init(&up);
	while (off < sbuf.size)
		if (msgpack_unpack_next(&up, sbuf.data, sbuf.size, &off) !=
		    MSGPACK_UNPACK_SUCCESS)
			fuzz_fail("stripped output is not msgpack", NULL);
	msgpack_unpacked_destroy(&up);
	msgpack_sbuffer_destroy(&sbuf);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cc_msg	*msg = NULL, *again = NULL, *fromjson = NULL;
	struct cc_error	 err;
	struct cc_subject subj;
	msgpack_sbuffer	 one, two;
	char		*json, *pretty, *again_json;
	cc_catset	 allowed;

	if (proto_decode(data, size, CC_MAX_FRAME_DEFAULT, &msg, &err) == -1) {
		if (msg != NULL)
			fuzz_fail("refusal left a message", NULL);
		check_error(&err);
		return 0;
	}
	if (proto_op(msg) < 0 || proto_op(msg) >= OP__COUNT)
		fuzz_fail("accepted message without an op", NULL);

	msgpack_sbuffer_init(&one);
	msgpack_sbuffer_init(&two);
	if (proto_encode(msg, &one) != 0)
		fuzz_fail("proto_encode failed", NULL);
	if (proto_decode(one.data, one.size, SIZE_MAX, &again, &err) != 0)
		fuzz_fail("re-encoded frame refused", &err);
	if (proto_op(again) != proto_op(msg))
		fuzz_fail("re-decoded op differs", NULL);
	if (proto_encode(again, &two) != 0)
		fuzz_fail("proto_encode failed", NULL);
	if (one.size != two.size || memcmp(one.data, two.data, one.size) != 0)
		fuzz_fail("canonical frame is not a fixed point", NULL);

	/*
	 * JSON out and back in.  NULL is allowed (integers past INT64_MAX
	 * have no JSON form); otherwise the file form must be judged as the
	 * frame was and give the same JSON again.  (Not the same frame: `v`
	 * and `op` come back first wherever the frame had them, and a
	 * float32 comes back as a float64 of the same value.)
	 */
	json = proto_to_json(msg, false);
	pretty = proto_to_json(msg, true);
	if ((json == NULL) != (pretty == NULL))
		fuzz_fail("compact and pretty JSON disagree", NULL);
	if (json != NULL) {
		if (proto_from_json(proto_op(msg), json, strlen(json),
		    &fromjson, &err) != 0)
			fuzz_fail("JSON of an accepted message refused", &err);
		if ((again_json = proto_to_json(fromjson, false)) == NULL)
			fuzz_fail("JSON of a message read from JSON failed",
			    NULL);
		if (strcmp(json, again_json) != 0)
			fuzz_fail("JSON round trip changed the message", NULL);
		free(again_json);
	}

	(void)proto_subject(msg, &subj);
	(void)proto_rtype(msg);
	/* Records (a publish, or a delivery of one) have a body to strip. */
	if (proto_op(msg) == OP_PUBLISH || proto_op(msg) == OP_DELIVER) {
		allowed = (cc_catset)(data[size - 1] |
		    (size > 1 ? data[size - 2] << 8 : 0)) & CATSET_ALL;
		check_strip(msg, allowed);
		check_strip(msg, CATSET_ALL);
		check_strip(msg, 0);
	}

	free(json);
	free(pretty);
	msgpack_sbuffer_destroy(&one);
	msgpack_sbuffer_destroy(&two);
	proto_msg_destroy(&fromjson);
	proto_msg_destroy(&again);
	proto_msg_destroy(&msg);
	return 0;
}
