/*
 * ident.c - identifiers: PNC, NOMS and CRN numbers (DESIGN §4.2), agency
 * ids, UUIDs, ONS area codes and NOMIS establishment codes.
 *
 * NOMS and CRN numbers are accepted in capitals only.  They are keys the
 * broker hashes and compares, and a case system that writes them in lower
 * case has a bug worth surfacing; only the PNC, whose many written forms
 * DESIGN §4.2 asks us to accept, is canonicalised (its check letter may be
 * lower case).
 */
#include <ctype.h>
#include <string.h>

#include <uuid/uuid.h>

#include "bytes.h"
#include "cc_proto.h"
#include "schema.h"

#define PNC_SERIAL_DIGITS	7

static bool	all_digits(const char *, size_t);
static bool	is_upper(int);

static const char pnc_letters[] = "ZABCDEFGHJKLMNPQRTUVWXY";

static bool
all_digits(const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static bool
is_upper(int c)
{
	return c >= 'A' && c <= 'Z';
}

/*
 * Split the PNC into year digits, serial digits and check letter, then
 * rebuild it.  Without a slash, 12 characters means a 4-digit year and
 * anything shorter a 2-digit one (DESIGN §4.2), so "0273319Z" is 2002.
 */
int
cc_pnc_canonical(const char *in, size_t len, int this_year, char out[14])
{
	const char	*slash, *serial;
	size_t		 ylen, slen;
	int		 year, yy, letter;
	long		 num;

	if (len < 4 || len > 13)
		return -1;
	letter = toupper((unsigned char)in[len - 1]);
	if (!is_upper(letter))
		return -1;
	slash = memchr(in, '/', len);
	if (slash != NULL) {
		ylen = (size_t)(slash - in);
		serial = slash + 1;
	} else {
		ylen = len == 12 ? 4 : 2;
		serial = in + ylen;
	}
	if ((ylen != 2 && ylen != 4) || serial > in + len - 1)
		return -1;
	slen = (size_t)(in + len - 1 - serial);
	if (slen < 1 || slen > PNC_SERIAL_DIGITS || !all_digits(in, ylen) ||
	    !all_digits(serial, slen))
		return -1;
	/* A 4-digit year must have the slash-free form's full serial. */
	if (slash == NULL && ylen == 4 && slen != PNC_SERIAL_DIGITS)
		return -1;

	year = 0;
	for (size_t i = 0; i < ylen; i++)
		year = year * 10 + (in[i] - '0');
	if (ylen == 2)
		year += (2000 + year <= this_year) ? 2000 : 1900;
	else if (year < 1900 || year > this_year)
		return -1;
	yy = year % 100;

	num = 0;
	for (size_t i = 0; i < slen; i++)
		num = num * 10 + (serial[i] - '0');
	if (pnc_letters[(yy * 10000000L + num) % 23] != letter)
		return -1;
	out[0] = (char)('0' + year / 1000);
	out[1] = (char)('0' + year / 100 % 10);
	out[2] = (char)('0' + year / 10 % 10);
	out[3] = (char)('0' + year % 10);
	out[4] = '/';
	memset(out + 5, '0', PNC_SERIAL_DIGITS - slen);
	memcpy(out + 5 + PNC_SERIAL_DIGITS - slen, serial, slen);
	out[12] = (char)letter;
	out[13] = '\0';
	return 0;
}

bool
cc_noms_valid(const char *s, size_t len)
{
	return len == 7 && is_upper(s[0]) && all_digits(s + 1, 4) &&
	    is_upper(s[5]) && is_upper(s[6]);
}

bool
cc_crn_valid(const char *s, size_t len)
{
	return len == 7 && is_upper(s[0]) && all_digits(s + 1, 6);
}

bool
cc_agency_id_valid(const char *s, size_t len)
{
	size_t	i;

	if (len < 3 || len > CC_ID_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-'))
			return false;
	return true;
}

/* Canonical 8-4-4-4-12 form; hex digits of either case. */
bool
cc_uuid_valid(const char *s, size_t len)
{
	size_t	i;

	if (len != CC_UUID_LEN)
		return false;
	for (i = 0; i < len; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/*
 * An ONS area code: a country letter (England, Wales, Scotland, Northern
 * Ireland) and 8 digits.  The one check for the wire's `area` and `areas`
 * and for the areas of both configuration files.
 */
bool
cc_area_valid(const char *s, size_t len)
{
	return len == 9 && memchr("EWSN", s[0], 4) != NULL &&
	    all_digits(s + 1, 8);
}

bool
ident_nomis_valid(const char *s, size_t len)
{
	return len == 3 && is_upper(s[0]) && is_upper(s[1]) && is_upper(s[2]);
}

bool
ident_sha256_valid(const char *s, size_t len)
{
	size_t	i;

	if (len != 64)
		return false;
	for (i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

void
cc_uuid_new(char out[CC_UUID_LEN + 1])
{
	uuid_t	u;

	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

/*
 * Hex, lower case.  OpenSSL's OPENSSL_buf2hexstr_ex writes upper case,
 * and the audit trail's pseudonyms and fingerprints have always been
 * lower case: changing them would change every entry's hash.
 */
char *
cc_hex(const uint8_t *p, size_t n, char *out)
{
	static const char	digits[] = "0123456789abcdef";
	size_t			i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
	return out;
}
