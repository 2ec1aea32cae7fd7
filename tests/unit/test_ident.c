/*
 * test_ident.c - identifiers of DESIGN §4.2 (PNC, NOMS, CRN), agency ids,
 * UUIDs, ONS area codes, and the dates and times of DESIGN §4.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bytes.h"
#include "cc_proto.h"
#include "iniconf.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* Every accepted written form and its canonical form, this year 2026. */
static const struct {
	const char	*in;
	int		 year;
	const char	*out;
} pnc_ok[] = {
	{ "2004/0012345D", 2026, "2004/0012345D" },
	{ "1999/7654321V", 2026, "1999/7654321V" },
	{ "2019/0000001P", 2026, "2019/0000001P" },
	{ "2026/0123456L", 2026, "2026/0123456L" },
	{ "0273319Z", 2026, "2002/0073319Z" },
	{ "20020073319Z", 2026, "2002/0073319Z" },
	{ "79/163001B", 2026, "1979/0163001B" },
	{ "04/12345D", 2026, "2004/0012345D" },
	{ "04/0012345D", 2026, "2004/0012345D" },
	{ "040012345D", 2026, "2004/0012345D" },
	{ "0412345D", 2026, "2004/0012345D" },
	{ "2004/12345D", 2026, "2004/0012345D" },
	{ "2004/0012345d", 2026, "2004/0012345D" },
	{ "99/7654321V", 2026, "1999/7654321V" },
	{ "997654321V", 2026, "1999/7654321V" },
	{ "19/1P", 2026, "2019/0000001P" },
	{ "191P", 2026, "2019/0000001P" },
	{ "13/1000J", 2026, "2013/0001000J" },
	{ "00/1A", 2026, "2000/0000001A" },
	/* The century of a 2-digit year follows this_year. */
	{ "26/123456L", 2026, "2026/0123456L" },
	{ "26/123456L", 2025, "1926/0123456L" },
	{ "27/5Q", 2026, "1927/0000005Q" },
	{ "27/5Q", 2027, "2027/0000005Q" },
	{ "25/9999999U", 2026, "2025/9999999U" },
	{ "02/73319Z", 2001, "1902/0073319Z" },
};

static const struct {
	const char	*in;
	int		 year;
	const char	*why;
} pnc_bad[] = {
	{ "2004/0012345E", 2026, "wrong check letter" },
	{ "2004/0012345A", 2026, "wrong check letter" },
	{ "1999/7654321W", 2026, "wrong check letter" },
	{ "0273319Y", 2026, "wrong check letter" },
	{ "2004/00123456D", 2026, "8-digit serial" },
	{ "2004/D", 2026, "no serial" },
	{ "2004/0012345", 2026, "no check letter" },
	{ "2004/00123451", 2026, "digit for a check letter" },
	{ "204/0012345D", 2026, "3-digit year" },
	{ "20040/012345D", 2026, "5-digit year" },
	{ "/0012345D", 2026, "no year" },
	{ "2004/00/12345D", 2026, "two slashes" },
	{ "2004 0012345D", 2026, "space" },
	{ "2004-0012345D", 2026, "dash" },
	{ "2004/001234aD", 2026, "letter in serial" },
	{ "200400123456D", 2026, "13 characters without slash" },
	{ "20040012345D1", 2026, "trailing digit" },
	{ "0412345678D", 2026, "11 characters: 8-digit serial" },
	{ "2004001234D", 2026, "no slash, 4-digit year, short serial" },
	{ "04D", 2026, "too short" },
	{ "", 2026, "empty" },
	{ "2027/0000005Q", 2026, "4-digit year after this year" },
	{ "1899/0000005L", 2026, "4-digit year before 1900" },
	{ "2004/0012345Ä", 2026, "non-ASCII letter" },
	{ "2004/0012345/", 2026, "slash for letter" },
};

Test(ident, pnc_accepted_forms_become_canonical)
{
	char	out[14];
	size_t	i;

	for (i = 0; i < NITEMS(pnc_ok); i++) {
		memset(out, '#', sizeof(out));
		cr_expect_eq(cc_pnc_canonical(pnc_ok[i].in, strlen(pnc_ok[i].in),
		    pnc_ok[i].year, out), 0, "%s (%d) refused", pnc_ok[i].in,
		    pnc_ok[i].year);
		cr_expect_eq(out[13], '\0', "%s: not terminated", pnc_ok[i].in);
		cr_expect_str_eq(out, pnc_ok[i].out, "%s (%d)", pnc_ok[i].in,
		    pnc_ok[i].year);
	}
}

Test(ident, pnc_malformed_or_wrong_letter_refused)
{
	char	out[14];
	size_t	i;

	for (i = 0; i < NITEMS(pnc_bad); i++)
		cr_expect_eq(cc_pnc_canonical(pnc_bad[i].in,
		    strlen(pnc_bad[i].in), pnc_bad[i].year, out), -1,
		    "%s accepted (%s)", pnc_bad[i].in, pnc_bad[i].why);
}

/* Every serial's letter is the one the formula gives, and only that one. */
Test(ident, pnc_check_letter_follows_the_formula)
{
	static const char letters[] = "ZABCDEFGHJKLMNPQRTUVWXY";
	char	in[48], out[14];
	long	serial;
	int	c, yy;

	for (yy = 0; yy < 100; yy += 7)
		for (serial = 1; serial < 10000000; serial += 99991) {
			char want = letters[(yy * 10000000L + serial) % 23];

			for (c = 'A'; c <= 'Z'; c++) {
				(void)snprintf(in, sizeof(in), "%02d/%ld%c", yy,
				    serial, c);
				cr_expect_eq(cc_pnc_canonical(in, strlen(in),
				    2026, out) == 0, c == want, "%s", in);
			}
		}
}

/* The length is the caller's: bytes past it are not read. */
Test(ident, pnc_reads_only_len_bytes)
{
	char	out[14];

	cr_expect_eq(cc_pnc_canonical("2004/0012345DXYZ", 13, 2026, out), 0);
	cr_expect_str_eq(out, "2004/0012345D");
	cr_expect_eq(cc_pnc_canonical("2004/0012345D", 12, 2026, out), -1);
}

Test(ident, noms_numbers)
{
	static const struct {
		const char	*s;
		bool		 ok;
	} rows[] = {
		{ "A1234BC", true }, { "Z0000ZZ", true }, { "a1234bc", false },
		{ "A1234bC", false }, { "A12BC", false }, { "A12345BC", false },
		{ "11234BC", false }, { "A1234B1", false }, { "AA234BC", false },
		{ "A1234BCD", false }, { "", false }, { "A1234 BC", false },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++)
		cr_expect_eq(cc_noms_valid(rows[i].s, strlen(rows[i].s)),
		    rows[i].ok, "%s", rows[i].s);
}

Test(ident, crn_numbers)
{
	static const struct {
		const char	*s;
		bool		 ok;
	} rows[] = {
		{ "X123456", true }, { "A000000", true }, { "x123456", false },
		{ "X12345", false }, { "X1234567", false }, { "1123456", false },
		{ "XX23456", false }, { "X12345A", false }, { "", false },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++)
		cr_expect_eq(cc_crn_valid(rows[i].s, strlen(rows[i].s)),
		    rows[i].ok, "%s", rows[i].s);
}

Test(ident, agency_ids)
{
	static const struct {
		const char	*s;
		bool		 ok;
	} rows[] = {
		{ "cjit.leeds", true }, { "carat.hmp-leeds", true },
		{ "abc", true }, { "a.b", true }, { "0-9", true },
		{ "ab", false }, { "CJIT.leeds", false }, { "cjit leeds", false },
		{ "cjit_leeds", false }, { "cjit/leeds", false }, { "", false },
		{ "caf\xc3\xa9.leeds", false },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  true },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  false },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++)
		cr_expect_eq(cc_agency_id_valid(rows[i].s, strlen(rows[i].s)),
		    rows[i].ok, "%s", rows[i].s);
}

Test(ident, uuids)
{
	static const struct {
		const char	*s;
		bool		 ok;
	} rows[] = {
		{ "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f", true },
		{ "6F1C2D3E-4A5B-4C6D-8E9F-0A1B2C3D4E5F", true },
		{ "00000000-0000-0000-0000-000000000000", true },
		{ "6f1c2d3e4a5b4c6d8e9f0a1b2c3d4e5f", false },
		{ "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5", false },
		{ "6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f0", false },
		{ "6f1c2d3e-4a5b-4c6d-8e9f_0a1b2c3d4e5f", false },
		{ "6f1c2d3e-4a5b-4c6d-8e9g-0a1b2c3d4e5f", false },
		{ "{6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5}", false },
		{ "", false },
	};
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++)
		cr_expect_eq(cc_uuid_valid(rows[i].s, strlen(rows[i].s)),
		    rows[i].ok, "%s", rows[i].s);
}

/*
 * ONS area codes, ^[EWSN][0-9]{8}$, with their lengths: one table for
 * cc_area_valid, the configuration files' areas (iniconf_area_add) and
 * the wire's `areas`, which must all agree.  Only `len` bytes are read.
 */
#define AREA(s)	s, sizeof(s) - 1
static const struct {
	const char	*s;
	size_t		 len;
	bool		 ok;
} areas[] = {
	{ AREA("E08000035"), true },
	{ AREA("W06000015"), true },
	{ AREA("S12000036"), true },
	{ AREA("N09000003"), true },
	{ AREA("E00000000"), true },
	{ AREA("E99999999"), true },
	{ "E08000035X", 9, true },
	{ "E08000035", 8, false },
	{ AREA(""), false },
	{ AREA("E0800003"), false },
	{ AREA("E080000355"), false },
	{ AREA("X08000035"), false },
	{ AREA("e08000035"), false },
	{ AREA("w06000015"), false },
	{ AREA("EE8000035"), false },
	{ AREA("08000035E"), false },
	{ AREA("E0800003A"), false },
	{ AREA("E08 00035"), false },
	{ AREA(" E0800003"), false },
	{ AREA("E08000035 "), false },
	{ AREA("E-8000035"), false },
	{ AREA("\0" "08000035"), false },
	{ AREA("E\0" "8000035"), false },
	{ AREA("\xef\xbc\xa5" "08000035"), false },
};

Test(ident, area_codes)
{
	size_t	i;

	for (i = 0; i < NITEMS(areas); i++)
		cr_expect_eq(cc_area_valid(areas[i].s, areas[i].len),
		    areas[i].ok, "row %zu: %.*s", i, (int)areas[i].len,
		    areas[i].s);
}

Test(ident, config_areas_are_the_same_area_codes)
{
	char	list[2][ICF_AREA_LEN], why[128], want[128];
	size_t	i, n;

	for (i = 0; i < NITEMS(areas); i++) {
		n = 1;
		memset(list, 0, sizeof(list));
		why[0] = '\0';
		if (areas[i].ok) {
			cr_expect_eq(iniconf_area_add(list, &n, 2, areas[i].s,
			    areas[i].len, why, sizeof(why)), 0, "row %zu: %s",
			    i, why);
			cr_expect_eq(n, 2, "row %zu", i);
			cr_expect_eq(strlen(list[1]), 9, "row %zu", i);
			cr_expect_eq(memcmp(list[1], areas[i].s, 9), 0,
			    "row %zu", i);
			continue;
		}
		(void)snprintf(want, sizeof(want), "'%.*s' is not an ONS "
		    "area code (like E08000035)", (int)areas[i].len,
		    areas[i].s);
		cr_expect_eq(iniconf_area_add(list, &n, 2, areas[i].s,
		    areas[i].len, why, sizeof(why)), -1, "row %zu accepted",
		    i);
		cr_expect_eq(n, 1, "row %zu", i);
		cr_expect_str_eq(why, want, "row %zu", i);
	}
}

Test(ident, wire_areas_are_the_same_area_codes)
{
	size_t	i;

	for (i = 0; i < NITEMS(areas); i++) {
		msgpack_sbuffer	 sbuf;
		msgpack_packer	 pk;
		struct cc_msg	*m = NULL;
		struct cc_error	 e;
		int		 rc;

		msgpack_sbuffer_init(&sbuf);
		msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
		cr_assert_eq(msgpack_pack_map(&pk, 4), 0);
		cr_assert_eq(proto_pack_header(&pk, "subscribe"), 0);
		cr_assert_eq(proto_pack_cstr(&pk, "types"), 0);
		cr_assert_eq(msgpack_pack_array(&pk, 0), 0);
		cr_assert_eq(proto_pack_cstr(&pk, "areas"), 0);
		cr_assert_eq(msgpack_pack_array(&pk, 1), 0);
		cr_assert_eq(proto_pack_strn(&pk, areas[i].s, areas[i].len),
		    0);
		rc = proto_decode(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT,
		    &m, &e);
		cr_expect_eq(rc, areas[i].ok ? 0 : -1, "row %zu", i);
		if (rc == -1) {
			cr_expect_eq(e.code, ERR_INVALID_FIELD, "row %zu: %s",
			    i, cc_err_name(e.code));
			cr_expect_str_eq(e.field, "areas.0", "row %zu", i);
		}
		proto_msg_destroy(&m);
		msgpack_sbuffer_destroy(&sbuf);
	}
}

/* Hex is lower case, two digits a byte, NUL-terminated, into out. */
Test(ident, hex_is_lower_case_two_digits_a_byte)
{
	static const struct {
		const char	*bytes;
		size_t		 n;
		const char	*hex;
	} rows[] = {
		{ "", 0, "" },
		{ "\x00", 1, "00" },
		{ "\x0f\xf0", 2, "0ff0" },
		{ "\x01\x23\x45\x67\x89\xab\xcd\xef", 8, "0123456789abcdef" },
		{ "\xff\xa5\x5a\x10", 4, "ffa55a10" },
	};
	char	out[32];
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++) {
		memset(out, '#', sizeof(out));
		cr_expect_eq(cc_hex((const uint8_t *)rows[i].bytes, rows[i].n,
		    out), out, "row %zu", i);
		cr_expect_str_eq(out, rows[i].hex, "row %zu", i);
	}
}

Test(ident, new_uuids_are_valid_lower_case_and_differ)
{
	char	a[CC_UUID_LEN + 1], b[CC_UUID_LEN + 1];
	size_t	i;

	cc_uuid_new(a);
	cc_uuid_new(b);
	cr_expect_eq(strlen(a), CC_UUID_LEN);
	cr_expect(cc_uuid_valid(a, strlen(a)));
	cr_expect_str_neq(a, b);
	for (i = 0; i < CC_UUID_LEN; i++)
		cr_expect(!(a[i] >= 'A' && a[i] <= 'Z'), "%s", a);
	cr_expect_eq(a[14], '4', "version 4: %s", a);
}

Test(ident, times_parse_to_epoch_milliseconds)
{
	static const struct {
		const char	*s;
		int64_t		 ms;
	} rows[] = {
		{ "1970-01-01T00:00:00Z", 0 },
		{ "1970-01-01T00:00:01.5Z", 1500 },
		{ "2026-05-01T09:00:00Z", INT64_C(1777626000000) },
		{ "2026-05-01T09:00:00.123Z", INT64_C(1777626000123) },
		{ "2026-05-01T09:00:00.123999999Z", INT64_C(1777626000123) },
		{ "2026-05-01T09:00:00+00:00", INT64_C(1777626000000) },
		{ "2026-05-01t09:00:00z", INT64_C(1777626000000) },
		{ "2024-02-29T23:59:59Z", INT64_C(1709251199000) },
		{ "1900-01-01T00:00:00Z", INT64_C(-2208988800000) },
	};
	static const char *const bad[] = {
		"2026-05-01T09:00:00", "2026-05-01T09:00:00+01:00",
		"2026-05-01T09:00:00-00:00", "2026-05-01 09:00:00Z",
		"2026-05-01T09:00Z", "2026-05-01T25:00:00Z",
		"2026-05-01T09:60:00Z", "2026-05-01T09:00:60Z",
		"2026-02-29T09:00:00Z", "2026-05-01T09:00:00.Z",
		"2026-05-01T09:00:00.1234567890Z", "2026-05-01T09:00:00ZZ",
		"2026-05-01", "1899-12-31T23:59:59Z", "3000-01-01T00:00:00Z",
		"", "2026-05-01T09:00:00.12a3Z",
	};
	int64_t	ms;
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++) {
		cr_expect_eq(cc_time_parse(rows[i].s, strlen(rows[i].s), &ms), 0,
		    "%s refused", rows[i].s);
		cr_expect_eq(ms, rows[i].ms, "%s: %lld", rows[i].s,
		    (long long)ms);
	}
	for (i = 0; i < NITEMS(bad); i++)
		cr_expect_eq(cc_time_parse(bad[i], strlen(bad[i]), &ms), -1,
		    "%s accepted", bad[i]);
}

Test(ident, dates_are_real_calendar_days)
{
	static const struct {
		const char	*s;
		bool		 ok;
	} rows[] = {
		{ "2026-02-28", true }, { "2026-02-29", false },
		{ "2024-02-29", true }, { "2000-02-29", true },
		{ "1900-02-29", false }, { "2100-02-29", false },
		{ "2026-02-30", false }, { "2026-04-30", true },
		{ "2026-04-31", false }, { "2026-12-31", true },
		{ "2026-13-01", false }, { "2026-00-01", false },
		{ "2026-01-00", false }, { "2026-1-01", false },
		{ "26-01-01", false }, { "2026/01/01", false },
		{ "2026-01-01T00:00:00Z", false }, { "1899-12-31", false },
		{ "1900-01-01", true }, { "2999-12-31", true },
		{ "+026-01-01", false },
	};
	int64_t	ms;
	size_t	i;

	for (i = 0; i < NITEMS(rows); i++)
		cr_expect_eq(cc_date_parse(rows[i].s, strlen(rows[i].s), &ms) ==
		    0, rows[i].ok, "%s", rows[i].s);
	cr_assert_eq(cc_date_parse("2026-05-01", 10, &ms), 0);
	cr_expect_eq(ms, INT64_C(1777593600000));
}

Test(ident, time_format_round_trips)
{
	char	buf[32];
	int64_t	ms, now;

	cc_time_format(INT64_C(1777626000123), buf);
	cr_expect_str_eq(buf, "2026-05-01T09:00:00.123Z");
	cc_time_format(0, buf);
	cr_expect_str_eq(buf, "1970-01-01T00:00:00.000Z");

	now = cc_time_now_ms();
	cc_time_now_rfc3339(buf);
	cr_assert_eq(cc_time_parse(buf, strlen(buf), &ms), 0, "%s", buf);
	cr_expect(ms >= now && ms - now < 5000, "%s vs %lld", buf,
	    (long long)now);
}
