/*
 * fuzz_json.c - libFuzzer harness for the JSON reader (the files agents
 * read from their spool and the CLI's input).
 *
 * The first byte picks the op (one value past the last is an unknown op,
 * which must be refused); the rest is the JSON text, not NUL-terminated.
 * An accepted message must re-encode to a frame proto_decode accepts, and
 * its JSON must read back to the same frame (DESIGN §8: JSON -> msgpack ->
 * JSON gives back an equal document).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_fail(const char *, const struct cc_error *)
		    __attribute__((noreturn));

static void
fuzz_fail(const char *what, const struct cc_error *err)
{
	if (err != NULL)
		fprintf(stderr, "fuzz_json: %s: %s field=%s detail=%s\n",
		    what, cc_err_name(err->code), err->field, err->detail);
	else
		fprintf(stderr, "fuzz_json: %s\n", what);
	abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cc_msg	*msg = NULL, *again = NULL, *back = NULL;
	struct cc_error	 err;
	msgpack_sbuffer	 one, two, three;
	enum cc_op	 op;
	char		*json;

	if (size < 1)
		return 0;
	op = (enum cc_op)(data[0] % (OP__COUNT + 1));
	if (proto_from_json(op, (const char *)data + 1, size - 1, &msg,
	    &err) == -1) {
		if (msg != NULL)
			fuzz_fail("refusal left a message", NULL);
		if (err.code <= CC_OK || err.code >= ERR__COUNT ||
		    memchr(err.field, '\0', sizeof(err.field)) == NULL ||
		    memchr(err.detail, '\0', sizeof(err.detail)) == NULL ||
		    memchr(err.re, '\0', sizeof(err.re)) == NULL)
			fuzz_fail("bad refusal", NULL);
		return 0;
	}
	if (op == OP__COUNT)
		fuzz_fail("unknown op accepted", NULL);
	if (proto_op(msg) != op)
		fuzz_fail("accepted as another op", NULL);

	msgpack_sbuffer_init(&one);
	msgpack_sbuffer_init(&two);
	msgpack_sbuffer_init(&three);
	if (proto_encode(msg, &one) != 0)
		fuzz_fail("proto_encode failed", NULL);
	if (proto_decode(one.data, one.size, SIZE_MAX, &again, &err) != 0)
		fuzz_fail("frame of an accepted file refused", &err);
	if (proto_encode(again, &two) != 0)
		fuzz_fail("proto_encode failed", NULL);
	if (one.size != two.size || memcmp(one.data, two.data, one.size) != 0)
		fuzz_fail("canonical frame is not a fixed point", NULL);

	/* Everything read from JSON has a JSON form. */
	if ((json = proto_to_json(msg, false)) == NULL)
		fuzz_fail("accepted file has no JSON form", NULL);
	if (proto_from_json(op, json, strlen(json), &back, &err) != 0)
		fuzz_fail("written JSON refused", &err);
	if (proto_encode(back, &three) != 0)
		fuzz_fail("proto_encode failed", NULL);
	if (one.size != three.size ||
	    memcmp(one.data, three.data, one.size) != 0)
		fuzz_fail("JSON round trip changed the frame", NULL);

	free(json);
	msgpack_sbuffer_destroy(&one);
	msgpack_sbuffer_destroy(&two);
	msgpack_sbuffer_destroy(&three);
	proto_msg_destroy(&back);
	proto_msg_destroy(&again);
	proto_msg_destroy(&msg);
	return 0;
}
