/*
 * test_igcmd.c - exported audit heads as `audit verify --head/--heads`
 * reads them: SEQ:HASH, the line `audit head` prints, the broker's log
 * line; anything else refused with the reason.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "audit.h"
#include "igcmd.h"

#define HEX	"00112233445566778899aabbccddeeff" \
		"0123456789abcdef0123456789ABCDEF"

static const struct {
	const char	*name;
	const char	*text;
	long long	 seq;		/* -1: refused */
	const char	*says;		/* refused: in the message */
} cases[] = {
	{ "seq_hash", "57:" HEX, 57, NULL },
	{ "seq_hash_spaces_around", "  57:" HEX " \r\n", 57, NULL },
	{ "audit_head_line", "{\"seq\":57,\"hash\":\"" HEX "\",\"time\":"
	  "\"2025-01-01T00:00:00.000Z\"}", 57, NULL },
	{ "log_line", "2025-01-01T00:00:00.000Z ccbroker: info: audit head "
	  "seq=57 hash=" HEX, 57, NULL },
	{ "journal_line", "Jan 01 00:00:00 host ccbroker[42]: 2025-01-01T00:"
	  "00:00.000Z ccbroker: info: audit head seq=57 hash=" HEX "\n", 57,
	  NULL },
	{ "empty_trail", "0:", 0, NULL },
	{ "empty_trail_logged", "x ccbroker: info: audit head seq=0 hash=-",
	  0, NULL },
	{ "empty_trail_printed", "{\"seq\":0,\"hash\":\"\",\"time\":\"\"}", 0,
	  NULL },
	{ "no_colon", "57", -1, "want SEQ:HASH" },
	{ "no_seq", ":" HEX, -1, "SEQ must be a number" },
	{ "negative_seq", "-57:" HEX, -1, "SEQ must be a number" },
	{ "seq_not_decimal", "0x39:" HEX, -1, "SEQ must be a number" },
	{ "seq_too_big", "99999999999999999999999:" HEX, -1, "out of range" },
	{ "hash_short", "57:abc", -1, "64 hex digits" },
	{ "hash_long", "57:" HEX "0", -1, "64 hex digits" },
	{ "hash_not_hex", "57:" "g0112233445566778899aabbccddeeff"
	  "0123456789abcdef0123456789abcdef", -1, "64 hex digits" },
	{ "text_after_hash", "57:" HEX " more", -1, "text after HASH" },
	{ "hash_for_empty_trail", "0:" HEX, -1, "seq 0 is the empty trail" },
	{ "json_not_json", "{\"seq\":57,", -1, "not JSON" },
	{ "json_without_hash", "{\"seq\":57}", -1, "want {\"seq\"" },
	{ "json_negative_seq", "{\"seq\":-1,\"hash\":\"\"}", -1,
	  "want {\"seq\"" },
	{ "log_line_without_hash", "audit head seq=57", -1,
	  "want audit head seq=N hash=H" },
};

Test(igcmd, exported_heads_are_read_in_every_form_and_nothing_else)
{
	struct ig_heads	 l = { NULL, 0, 0 };
	char		 err[512];
	size_t		 i, n = 0;
	int		 rc;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rc = ig_heads_add(&l, cases[i].text, err, sizeof(err));
		if (cases[i].seq < 0) {
			cr_expect_eq(rc, -1, "%s: accepted", cases[i].name);
			cr_expect(rc == 0 || strstr(err, cases[i].says) !=
			    NULL, "%s: want [%s], got [%s]", cases[i].name,
			    cases[i].says, err);
			cr_expect(rc == 0 || strstr(err, "SEQ:HASH") != NULL,
			    "%s: the message does not say what to give: %s",
			    cases[i].name, err);
			continue;
		}
		cr_assert_eq(rc, 0, "%s: %s", cases[i].name, err);
		cr_assert_eq(l.n, ++n);
		cr_expect_eq(l.h[n - 1].seq, (uint64_t)cases[i].seq, "%s",
		    cases[i].name);
		if (cases[i].seq > 0) {
			cr_expect_eq(l.h[n - 1].hash[0], 0x00, "%s",
			    cases[i].name);
			cr_expect_eq(l.h[n - 1].hash[1], 0x11, "%s",
			    cases[i].name);
			/* Upper-case hex reads the same. */
			cr_expect_eq(l.h[n - 1].hash[31], 0xef, "%s",
			    cases[i].name);
		}
	}
	ig_heads_free(&l);
	cr_expect_null(l.h);
}
