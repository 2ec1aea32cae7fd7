/*
 * iniconf.h - table-driven INI configuration over inih.
 *
 * A configuration is described once, as a table of sections and of the
 * keys each may hold; the loader walks the file with inih and the table,
 * and refuses what the table does not know.  Sections are fixed
 * ("broker") or prefixed ("agency." matches [agency.cjit.leeds], the
 * rest of the name being handed to the section's open function).
 *
 * (Named iniconf, not ini: with -Iproto a proto/ini.h would hide inih's
 * own <ini.h>.)
 */
#ifndef CC_INICONF_H
#define CC_INICONF_H

#include <stddef.h>

#include "cc_proto.h"

enum iniconf_type {
	ICF_STRING,		/* char[size] */
	ICF_PATH,		/* char[size]; see ICF_FILE, ICF_DIR */
	ICF_UINT,		/* unsigned integer of `size` bytes, min..max */
	ICF_BOOL,		/* bool: yes/no, true/false, on/off */
	ICF_FUNC		/* parse() reads the value */
};

#define ICF_REQUIRED	0x01	/* key (or section) must be given */
#define ICF_FILE	0x02	/* path must name an existing regular file */
#define ICF_DIR		0x04	/* path must name an existing directory */

/*
 * A value parser for ICF_FUNC keys: read `value` into the section object.
 * Returns 0, or -1 with a short reason in why (the loader adds file, line
 * and key).
 */
typedef int	(*iniconf_parse_fn)(void *obj, const char *value, char *why,
		    size_t whylen);

struct iniconf_key {
	const char		*name;
	enum iniconf_type	 type;
	unsigned		 flags;		/* ICF_REQUIRED, ICF_FILE, ICF_DIR */
	size_t			 off;		/* of the member in the object */
	size_t			 size;		/* of the member */
	unsigned long long	 min, max;	/* ICF_UINT bounds, inclusive */
	iniconf_parse_fn	 parse;		/* ICF_FUNC */
};

/* Table rows for a member m of struct type st. */
#define ICF_MEMBER(st, m)	offsetof(st, m), sizeof(((st *)0)->m)
#define ICF_KEY_STRING(n, fl, st, m) \
	{ (n), ICF_STRING, (fl), ICF_MEMBER(st, m), 0, 0, NULL }
#define ICF_KEY_PATH(n, fl, st, m) \
	{ (n), ICF_PATH, (fl), ICF_MEMBER(st, m), 0, 0, NULL }
#define ICF_KEY_UINT(n, fl, st, m, lo, hi) \
	{ (n), ICF_UINT, (fl), ICF_MEMBER(st, m), (lo), (hi), NULL }
#define ICF_KEY_BOOL(n, fl, st, m) \
	{ (n), ICF_BOOL, (fl), ICF_MEMBER(st, m), 0, 0, NULL }
#define ICF_KEY_FUNC(n, fl, fn) \
	{ (n), ICF_FUNC, (fl), 0, 0, 0, 0, (fn) }
#define ICF_KEY_END		{ NULL, ICF_STRING, 0, 0, 0, 0, 0, NULL }

/*
 * The object a section's keys are written into.  For a prefixed section
 * `suffix` is the rest of its name (non-empty); for a fixed one it is "".
 * Returns the object, or NULL with a reason in why (a bad name).  The
 * object is used only until the next section starts, so open may move
 * earlier ones (realloc).  A section may be given more than once: open is
 * then called again with the same suffix and must return the same entry.
 * A NULL open means the object is `conf` itself.
 */
typedef void	*(*iniconf_open_fn)(void *conf, const char *suffix, char *why,
		    size_t whylen);

struct iniconf_section {
	const char		 *name;		/* "broker", or "agency." */
	unsigned		  flags;	/* ICF_REQUIRED */
	const struct iniconf_key *keys;		/* ends with ICF_KEY_END */
	iniconf_open_fn		  open;
};
#define ICF_SECTION_END	{ NULL, 0, NULL, NULL }

/*
 * Load the INI file at path into conf as the section table says.  Keys
 * left out keep what conf held before (the caller's defaults).  Relative
 * paths (ICF_PATH) are taken from the directory of the file and stored
 * absolute.  A section given again goes on where it left off.  Refused,
 * with one line in err: an unreadable file, a syntax error, an unknown
 * section or key, a key given twice in a section, a bad value, a line
 * longer than inih's limit (198 characters), a missing required section
 * or key.  The line reads "FILE:LINE: ..." when a line is at fault,
 * "FILE: ..." otherwise.  Returns 0, or -1 with err filled; conf may then
 * be partly written.
 */
int	iniconf_load(const char *path, const struct iniconf_section *,
	    void *conf, char *err, size_t errlen) CC_WUR;

/*
 * Call item() for every element of a comma-separated list, trimmed of
 * blanks.  An empty value is an empty list; an empty element ("a,,b") is
 * refused.  Returns 0, or -1 with why filled (by item() or here).
 */
typedef int	(*iniconf_item_fn)(void *arg, const char *s, size_t len,
		    char *why, size_t whylen);
int	iniconf_list(const char *value, iniconf_item_fn, void *arg, char *why,
	    size_t whylen) CC_WUR;

/*
 * A comma-separated list of record types as a bit mask (1 << enum
 * cc_rtype) into *mask, which is cleared first.  Returns 0 or -1 with why.
 */
int	iniconf_rtypes(const char *value, unsigned *mask, char *why,
	    size_t whylen) CC_WUR;

/*
 * Add an ONS area code (cc_area_valid: ^[EWSN][0-9]{8}$, e.g. E08000035)
 * to a list of at most max codes.  Returns 0, or -1 with why when the code is bad,
 * listed twice or one too many.
 */
#define ICF_AREA_LEN	16
int	iniconf_area_add(char (*areas)[ICF_AREA_LEN], size_t *n, size_t max,
	    const char *s, size_t len, char *why, size_t whylen) CC_WUR;

#endif /* CC_INICONF_H */
