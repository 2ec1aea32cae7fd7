/*
 * test_audit_text.c - only well-formed text goes into the permanent audit
 * trail (issue 18 item 9): an id that is not a canonical UUID, and a type,
 * sender or recipient that is not a name, are written as "sha256:" and
 * the hex of their SHA-256; empty text as nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <msgpack.h>
#include <openssl/evp.h>

#include "audit.h"
#include "store.h"

static char		 dir[64];
static struct store	*st;

static void
setup(void)
{
	char	err[256];

	snprintf(dir, sizeof(dir), "/tmp/cctest-audit-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	strcat(dir, "/data");
	cr_assert_eq(store_init(dir, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(store_open(&st, dir, 64, false, err, sizeof(err)), 0,
	    "%s", err);
}

static void
teardown(void)
{
	char	cmd[128];

	store_close(&st);
	*strrchr(dir, '/') = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

/* "sha256:" and the hex of the text's SHA-256. */
static const char *
hashed(const char *s, char out[72])
{
	unsigned char	md[32];
	unsigned int	len;
	int		i;

	cr_assert_eq(EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL),
	    1);
	strcpy(out, "sha256:");
	for (i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	return out;
}

/*
 * Field k of the newest entry, as text in out ("(nil)" when nil, "(?)"
 * when absent or not text).
 */
static void
newest_field(const char *k, char *out, size_t outlen)
{
	struct store_txn	*txn;
	msgpack_unpacked	 up;
	const void		*v;
	size_t			 len, off = 0;
	uint64_t		 seq;
	uint32_t		 i;

	snprintf(out, outlen, "(?)");
	cr_assert_eq(store_begin(st, false, &txn), 0);
	cr_assert_eq(store_audit_last(st, txn, &seq, &v, &len), 0);
	msgpack_unpacked_init(&up);
	cr_assert_eq(msgpack_unpack_next(&up, v, len, &off),
	    MSGPACK_UNPACK_SUCCESS);
	for (i = 0; i < up.data.via.map.size; i++) {
		const msgpack_object_kv *kv = &up.data.via.map.ptr[i];

		if (kv->key.via.str.size != strlen(k) ||
		    memcmp(kv->key.via.str.ptr, k, strlen(k)) != 0)
			continue;
		if (kv->val.type == MSGPACK_OBJECT_NIL)
			snprintf(out, outlen, "(nil)");
		else if (kv->val.type == MSGPACK_OBJECT_STR)
			snprintf(out, outlen, "%.*s",
			    (int)kv->val.via.str.size, kv->val.via.str.ptr);
	}
	msgpack_unpacked_destroy(&up);
	store_abort(txn);
}

enum field { F_ID, F_TYPE, F_SENDER, F_RECIPIENT };

static const struct {
	const char	*name;
	enum field	 field;
	const char	*given;		/* NULL: none */
	const char	*written;	/* NULL: hashed */
} cases[] = {
	{ "id_uuid_kept", F_ID, "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b",
	  "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b" },
	{ "id_uuid_upper_case_kept", F_ID,
	  "6F1C2A9E-3B4D-4E5F-8A7B-1C2D3E4F5A6B",
	  "6F1C2A9E-3B4D-4E5F-8A7B-1C2D3E4F5A6B" },
	{ "id_name_and_birth_date_hashed", F_ID, "Jane Smith 1980-01-01",
	  NULL },
	{ "id_without_spaces_hashed", F_ID, "Jane.Smith.1980-01-01", NULL },
	{ "id_op_name_hashed", F_ID, "publish", NULL },
	{ "id_uuid_without_dashes_hashed", F_ID,
	  "6f1c2a9e3b4d4e5f8a7b1c2d3e4f5a6b", NULL },
	{ "id_uuid_with_more_hashed", F_ID,
	  "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b jane", NULL },
	{ "id_empty_is_nothing", F_ID, "", "(nil)" },
	{ "id_none_is_nothing", F_ID, NULL, "(nil)" },
	{ "type_name_kept", F_TYPE, "release-plan", "release-plan" },
	{ "type_text_hashed", F_TYPE, "Release Plan", NULL },
	{ "sender_agency_kept", F_SENDER, "carat.hmp-leeds",
	  "carat.hmp-leeds" },
	{ "sender_text_hashed", F_SENDER, "Jane Smith", NULL },
	{ "recipient_agency_kept", F_RECIPIENT, "cjit.leeds", "cjit.leeds" },
	{ "recipient_text_hashed", F_RECIPIENT, "cjit.leeds\nforged", NULL },
};

Test(audit, text_fields_are_written_only_when_well_formed, .init = setup,
    .fini = teardown)
{
	static const char *const keys[] = { "id", "type", "sender",
	    "recipient" };
	struct store_txn	*txn;
	struct audit_ev		 ev;
	char			 got[128], want[72];
	uint64_t		 count, bad;
	size_t			 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(&ev, 0, sizeof(ev));
		ev.event = EV_INPUT_REJECTED;
		ev.reason = "invalid-field";
		switch (cases[i].field) {
		case F_ID:		ev.id = cases[i].given; break;
		case F_TYPE:		ev.type = cases[i].given; break;
		case F_SENDER:		ev.sender = cases[i].given; break;
		case F_RECIPIENT:	ev.recipient = cases[i].given; break;
		}
		cr_assert_eq(store_begin(st, true, &txn), 0);
		cr_assert_eq(audit_append(st, txn, &ev), 0, "%s",
		    cases[i].name);
		cr_assert_eq(audit_seal(st, txn), 0);
		cr_assert_eq(store_commit(txn), 0);
		newest_field(keys[cases[i].field], got, sizeof(got));
		cr_expect_str_eq(got, cases[i].written != NULL ?
		    cases[i].written : hashed(cases[i].given, want),
		    "%s: %s written as %s", cases[i].name, keys[cases[i].field],
		    got);
		/* The reason is the broker's word, written as given. */
		newest_field("reason", got, sizeof(got));
		cr_expect_str_eq(got, "invalid-field", "%s", cases[i].name);
	}
	cr_expect_eq(audit_verify(st, &count, &bad, got, sizeof(got)), 0,
	    "%s", got);
	cr_expect_eq(count, sizeof(cases) / sizeof(cases[0]));
}
