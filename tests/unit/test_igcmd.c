/*
 * test_igcmd.c - exported audit heads as `audit verify --head/--heads`
 * reads them: SEQ:HASH, the line `audit head` prints, the broker's log
 * line; anything else refused with the reason.  And the requests `audit
 * subject` reads: one identifier a line, or a JSON object; a fault named
 * by its line, never by what was written.
 */
#define _GNU_SOURCE	/* fmemopen's prototype with -std=c11 */
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

static const struct {
	const char	*name;
	const char	*text;
	const char	*pnc, *noms, *crn;	/* read; NULL: refused */
	const char	*says;			/* refused: the message */
} requests[] = {
	{ "one_a_line", "pnc=2004/0012345D\nnoms=A1234BC\ncrn=X123456\n",
	  "2004/0012345D", "A1234BC", "X123456", NULL },
	{ "comments_blanks_spaces_crlf", "# SAR 117\r\n\r\n  pnc = "
	  "04/12345D \r\n\t\n", "2004/0012345D", "", "", NULL },
	{ "scheme_any_case", "NOMS=A1234BC", "", "A1234BC", "", NULL },
	{ "same_twice_taken_once", "pnc=2004/0012345D\npnc=04/12345D\n",
	  "2004/0012345D", "", "", NULL },
	{ "json", "  {\"noms\": \"A1234BC\", \"crn\": \"X123456\"}\n", "",
	  "A1234BC", "X123456", NULL },
	{ "bad_noms_named_by_line", "# x\n\npnc=2004/0012345D\nnoms=A1234B\n",
	  NULL, NULL, NULL, "stdin:4: not a valid NOMS number" },
	{ "bad_check_letter", "pnc=2004/0012345E", NULL, NULL, NULL,
	  "stdin:1: not a valid PNC" },
	{ "bad_crn", "\ncrn=X12345", NULL, NULL, NULL,
	  "stdin:2: not a valid CRN" },
	{ "no_scheme", "2004/0012345D", NULL, NULL, NULL,
	  "stdin:1: want pnc=..., noms=... or crn=..." },
	{ "unknown_scheme", "nhs=4857773456", NULL, NULL, NULL,
	  "stdin:1: not an identifier scheme" },
	{ "two_people", "pnc=2004/0012345D\npnc=1999/7654321V", NULL, NULL,
	  NULL, "stdin:2: a second PNC, not the one on line 1" },
	{ "nothing", "# only a comment\n\n", NULL, NULL, NULL,
	  "stdin: no identifier given" },
	{ "json_broken", "{\"pnc\": \"2004/0012345D\",\n \"noms\": A1234BC}",
	  NULL, NULL, NULL, "stdin:2: not valid JSON" },
	{ "json_bad_value_by_line", "{\"pnc\": \"2004/0012345D\",\n"
	  " \"noms\": \"A1234B\"}", NULL, NULL, NULL,
	  "stdin:2: not a valid NOMS number" },
	{ "json_not_a_string", "{\"crn\": 123456}", NULL, NULL, NULL,
	  "stdin:1: the CRN must be a string" },
	{ "json_other_key", "{\"name\": \"Alex Example\"}", NULL, NULL,
	  NULL, "a key other than pnc, noms and crn" },
	{ "json_array", "{\"pnc\": [\"2004/0012345D\"]}", NULL, NULL, NULL,
	  "the PNC must be a string" },
	{ "json_duplicate_key", "{\"pnc\": \"2004/0012345D\", \"pnc\": "
	  "\"1999/7654321V\"}", NULL, NULL, NULL, "not valid JSON" },
	{ "not_text", "pnc=2004/0012345D\n\0noms=A1234BC", NULL, NULL, NULL,
	  "stdin: not text" },
};

Test(igcmd, subject_requests_are_read_in_both_forms_and_faults_named_by_line)
{
	struct cc_subject	 s;
	char			 err[512];
	size_t			 i, len;
	FILE			*f;
	int			 rc;

	for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
		len = strlen(requests[i].text);
		/* The one case with a NUL in it goes on past the NUL. */
		if (strcmp(requests[i].name, "not_text") == 0)
			len += 1 + strlen(requests[i].text + len + 1);
		f = fmemopen((void *)requests[i].text, len, "r");
		cr_assert_not_null(f);
		memset(err, 0, sizeof(err));
		rc = ig_request_read(f, "stdin", &s, err, sizeof(err));
		fclose(f);
		if (requests[i].pnc == NULL) {
			cr_expect_eq(rc, -1, "%s: accepted", requests[i].name);
			cr_expect(strstr(err, requests[i].says) != NULL,
			    "%s: want [%s], got [%s]", requests[i].name,
			    requests[i].says, err);
			/* Never what was written. */
			cr_expect(strstr(err, "12345") == NULL &&
			    strstr(err, "A1234") == NULL &&
			    strstr(err, "Alex") == NULL &&
			    strstr(err, "4857") == NULL, "%s: repeated: %s",
			    requests[i].name, err);
			cr_expect_eq(s.pnc[0] | s.noms[0] | s.crn[0], 0,
			    "%s: left filled", requests[i].name);
			continue;
		}
		cr_assert_eq(rc, 0, "%s: %s", requests[i].name, err);
		cr_expect_str_eq(s.pnc, requests[i].pnc, "%s",
		    requests[i].name);
		cr_expect_str_eq(s.noms, requests[i].noms, "%s",
		    requests[i].name);
		cr_expect_str_eq(s.crn, requests[i].crn, "%s",
		    requests[i].name);
	}
}
