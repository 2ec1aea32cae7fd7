/*
 * test_pki.c - certificates and keys of a partnership freshly made by
 * certs-example/mkpartnership.sh: what passes, what is refused and why.
 */
#include <sys/stat.h>

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/hooks.h>
#include <zmq.h>

#include "pki.h"
#include "pki_testutil.h"

static const char	*pdir;	/* the partnership */
static const char	*fdir;	/* a foreign one, under another CA */

#define ENV_P	"CC_TEST_PKI_PARTNERSHIP"
#define ENV_F	"CC_TEST_PKI_FOREIGN"

static void	setup(void);
static struct pki_ca *ca_load(const char *, bool);

/*
 * Once per run: the partnership with extra certificates (expired, not yet
 * valid, two with an OU that is no agency type, one from a foreign CA)
 * and two more CRLs of its CA (past its next update, not yet valid).
 */
ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	(void)set;
	if (tu_mkpart(ENV_F, "pki-f", "") == -1 ||
	    tu_mkpart(ENV_P, "pki-p",
	    "sh \"$M\" -i old.leeds cjit . --not-before 20200101000000Z "
	    "--not-after 20210101000000Z && "
	    "sh \"$M\" -i future.leeds cjit . --not-before 20450101000000Z "
	    "--not-after 20460101000000Z && "
	    "sh \"$M\" -i odd.leeds wizard . && "
	    "sh \"$M\" -i wrong-ou.leeds probation-service . && "
	    "cp ca.crl keep.crl && "
	    "sh \"$M\" -g --not-before 20200101000000Z "
	    "--not-after 20210101000000Z . && mv ca.crl past.crl && "
	    "sh \"$M\" -g --not-before 20450101000000Z "
	    "--not-after 20460101000000Z . && mv ca.crl future.crl && "
	    "mv keep.crl ca.crl && ") == -1 ||
	    tu_sh("cp '%s/agencies/cjit.leeds.crt' '%s/agencies/foreign.crt'",
	    tu_dir(ENV_F), tu_dir(ENV_P)) != 0)
		unsetenv(ENV_P);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	tu_rmpart(ENV_P);
	tu_rmpart(ENV_F);
}

static void
setup(void)
{
	pdir = tu_dir(ENV_P);
	fdir = tu_dir(ENV_F);
	cr_assert_not_null(pdir, "no partnership was made (see stderr)");
	cr_assert_not_null(fdir, "no partnership was made (see stderr)");
}

static struct pki_ca *
ca_load(const char *dir, bool crl)
{
	struct pki_ca	*ca;
	char		 err[256];

	ca = pki_ca_load(tu_path(dir, "ca.crt"), crl ? tu_path(dir, "ca.crl") :
	    NULL, err, sizeof(err));
	cr_assert_not_null(ca, "%s", err);
	return ca;
}

TestSuite(pki, .init = setup, .timeout = 60);

/* Every certificate of the directory, checked now: outcome and reason. */
static const struct {
	const char	*file;
	int		 rc;
	const char	*reason;	/* when refused */
	int		 type;		/* as read, either way */
	const char	*cn;
} check_cases[] = {
	{ "agencies/carat.hmp-leeds.crt", 0, "", AT_PRISON_CARAT,
	    "carat.hmp-leeds" },
	{ "agencies/cjit.leeds.crt", 0, "", AT_CJIT, "cjit.leeds" },
	{ "agencies/probation.leeds.crt", 0, "", AT_PROBATION,
	    "probation.leeds" },
	{ "agencies/housing.leeds-hostels.crt", 0, "", AT_HOUSING_PROVIDER,
	    "housing.leeds-hostels" },
	{ "agencies/la.leeds.crt", 0, "", AT_LA_HOUSING, "la.leeds" },
	{ "broker.crt", 0, "", AT_BROKER, "broker.example" },
	{ "agencies/revoked.agency.crt", -1, "revoked", AT_CJIT,
	    "revoked.agency" },
	{ "agencies/old.leeds.crt", -1, "expired", AT_CJIT, "old.leeds" },
	{ "agencies/future.leeds.crt", -1, "not yet valid", AT_CJIT,
	    "future.leeds" },
	{ "agencies/foreign.crt", -1, "unknown issuer", AT_CJIT,
	    "cjit.leeds" },
	{ "agencies/odd.leeds.crt", -1, "unknown agency type (OU)", -1,
	    "odd.leeds" },
	{ "agencies/wrong-ou.leeds.crt", -1, "unknown agency type (OU)", -1,
	    "wrong-ou.leeds" },
	{ "agencies/missing.crt", -1, "No such file or directory", -1, "" },
	{ "ca.key", -1, "not a PEM certificate (no start line)", -1, "" },
};

Test(pki, certificates_are_checked_against_ca_crl_and_time)
{
	struct pki_ca	*ca = ca_load(pdir, true);
	struct pki_cert	 c;
	char		 err[256];
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
		err[0] = '\0';
		rc = pki_cert_check(ca, tu_path(pdir, check_cases[i].file),
		    time(NULL), &c, err, sizeof(err));
		cr_expect_eq(rc, check_cases[i].rc, "%s: %s",
		    check_cases[i].file, err);
		if (rc == -1)
			cr_expect_str_eq(err, check_cases[i].reason, "%s",
			    check_cases[i].file);
		cr_expect_eq(c.type, check_cases[i].type, "%s",
		    check_cases[i].file);
		cr_expect_str_eq(c.cn, check_cases[i].cn, "%s",
		    check_cases[i].file);
	}
	pki_ca_destroy(&ca);
	cr_assert_null(ca);
}

Test(pki, without_crl_a_revoked_certificate_passes)
{
	struct pki_ca	*ca = ca_load(pdir, false);
	struct pki_cert	 c;
	char		 err[256];

	cr_assert_eq(pki_cert_check(ca, tu_path(pdir,
	    "agencies/revoked.agency.crt"), time(NULL), &c, err, sizeof(err)),
	    0, "%s", err);
	pki_ca_destroy(&ca);
}

Test(pki, foreign_ca_refuses_our_agencies)
{
	struct pki_ca	*ca = ca_load(fdir, true);
	struct pki_cert	 c;
	char		 err[256];

	cr_assert_eq(pki_cert_check(ca, tu_path(pdir,
	    "agencies/cjit.leeds.crt"), time(NULL), &c, err, sizeof(err)), -1);
	cr_assert_str_eq(err, "unknown issuer");
	pki_ca_destroy(&ca);
}

Test(pki, crl_of_another_ca_is_refused)
{
	char		 err[256], want[2 * PATH_MAX + 64];
	struct pki_ca	*ca;

	ca = pki_ca_load(tu_path(pdir, "ca.crt"), tu_path(fdir, "ca.crl"), err,
	    sizeof(err));
	cr_assert_null(ca);
	snprintf(want, sizeof(want), "%s/ca.crl: not signed by the CA "
	    "%s/ca.crt", fdir, pdir);
	cr_assert_str_eq(err, want);
}

/* Each row: a CRL of the CA, judged at now + shift: in force, or why not. */
static const struct {
	const char	*crl;		/* NULL: none loaded */
	time_t		 shift;		/* -1: at 2045-06-01 */
	const char	*reason;	/* NULL: in force */
} crl_cases[] = {
	{ "ca.crl", 0, NULL },
	{ "ca.crl", 29 * 86400, NULL },
	{ "ca.crl", 31 * 86400, "CRL past its next update (" },
	{ "past.crl", 0, "CRL past its next update (2021-01-01T00:00:00.000Z)" },
	{ "future.crl", 0,
	    "CRL not yet valid (last update 2045-01-01T00:00:00.000Z)" },
	{ "future.crl", -1, NULL },	/* 2045-06-01: in its lifetime */
	{ NULL, 0, "no CRL" },
};

Test(pki, crl_in_force_is_judged_at_the_time_given)
{
	struct pki_ca	*ca;
	char		 err[256];
	time_t		 next;
	size_t		 i;
	int		 rc;

	for (i = 0; i < sizeof(crl_cases) / sizeof(crl_cases[0]); i++) {
		ca = pki_ca_load(tu_path(pdir, "ca.crt"), crl_cases[i].crl ?
		    tu_path(pdir, crl_cases[i].crl) : NULL, err, sizeof(err));
		cr_assert_not_null(ca, "%s", err);
		err[0] = '\0';
		rc = pki_ca_crl_check(ca, crl_cases[i].shift == -1 ?
		    (time_t)2379888000 : time(NULL) + crl_cases[i].shift,
		    &next, err, sizeof(err));
		if (crl_cases[i].reason == NULL)
			cr_expect_eq(rc, 0, "row %zu: %s", i, err);
		else
			cr_expect(rc == -1 && strncmp(err, crl_cases[i].reason,
			    strlen(crl_cases[i].reason)) == 0,
			    "row %zu: '%s'", i, err);
		if (crl_cases[i].crl != NULL &&
		    strcmp(crl_cases[i].crl, "ca.crl") == 0)
			cr_expect(next > time(NULL) + 29 * 86400 &&
			    next <= time(NULL) + 30 * 86400, "row %zu", i);
		pki_ca_destroy(&ca);
	}
}

Test(pki, ca_load_refuses_a_leaf_and_a_missing_file)
{
	char	err[256], want[PATH_MAX + 64];

	cr_assert_null(pki_ca_load(tu_path(pdir, "agencies/cjit.leeds.crt"),
	    NULL, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s/agencies/cjit.leeds.crt: not a CA "
	    "certificate", pdir);
	cr_assert_str_eq(err, want);
	cr_assert_null(pki_ca_load(tu_path(pdir, "none.crt"), NULL, err,
	    sizeof(err)));
	snprintf(want, sizeof(want), "%s/none.crt: No such file or directory",
	    pdir);
	cr_assert_str_eq(err, want);
}

Test(pki, validity_is_judged_at_the_time_given)
{
	struct pki_ca	*ca = ca_load(pdir, true);
	struct pki_cert	 c;
	char		 err[256];
	const char	*cjit = tu_path(pdir, "agencies/cjit.leeds.crt");

	cr_assert_eq(pki_cert_check(ca, cjit, time(NULL) + 20 * 86400, &c,
	    err, sizeof(err)), 0, "%s", err);
	/*
	 * CRL, CA and agency all lapse after 30 days: the CRL is judged
	 * first, then the CA.
	 */
	cr_assert_eq(pki_cert_check(ca, cjit, time(NULL) + 31 * 86400, &c,
	    err, sizeof(err)), -1);
	cr_assert_str_eq(err, "CRL expired");
	pki_ca_destroy(&ca);
	ca = ca_load(pdir, false);
	cr_assert_eq(pki_cert_check(ca, cjit, time(NULL) + 31 * 86400, &c,
	    err, sizeof(err)), -1);
	cr_assert_str_eq(err, "CA certificate expired");
	/* Before the CA itself was valid: its dates are checked too. */
	cr_assert_eq(pki_cert_check(ca, cjit, time(NULL) - 86400, &c, err,
	    sizeof(err)), -1);
	cr_assert_str_eq(err, "CA certificate not yet valid");
	pki_ca_destroy(&ca);
}

Test(pki, fields_and_dates_are_read)
{
	struct pki_cert	c;
	char		err[256];

	cr_assert_eq(pki_cert_read(tu_path(pdir, "agencies/old.leeds.crt"), &c,
	    err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.cn, "old.leeds");
	cr_assert_str_eq(c.ou, "cjit");
	cr_assert_str_eq(c.org, "old.leeds (example)");
	cr_assert_eq(c.type, AT_CJIT);
	cr_assert_eq(c.not_before, 1577836800, "2020-01-01T00:00:00Z");
	cr_assert_eq(c.not_after, 1609459200, "2021-01-01T00:00:00Z");
	cr_assert_gt(strlen(c.serial), 0);

	cr_assert_eq(pki_cert_read(tu_path(pdir,
	    "agencies/housing.leeds-hostels.crt"), &c, err, sizeof(err)), 0);
	cr_assert_str_eq(c.org, "Leeds Hostels Association (example)");
	cr_assert_eq(c.not_after - c.not_before, 30 * 86400);

	cr_assert_eq(pki_cert_read(tu_path(pdir, "ca.crt"), &c, err,
	    sizeof(err)), -1, "the CA key is Ed25519");
	cr_assert_not_null(strstr(err, "key is not X25519"), "%s", err);
}

Test(pki, key_file_gives_the_certificate_key)
{
	struct pki_cert	c;
	uint8_t		sec[32], pub[32], zero[32];
	char		err[256];
	const char	*key = tu_path(pdir, "keys/probation.leeds.key");

	memset(zero, 0, sizeof(zero));
	cr_assert_eq(pki_key_read(key, sec, pub, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(pki_cert_read(tu_path(pdir,
	    "agencies/probation.leeds.crt"), &c, err, sizeof(err)), 0);
	cr_assert_eq(memcmp(pub, c.key, 32), 0);
	cr_assert_neq(memcmp(sec, zero, 32), 0);
	cr_assert_neq(memcmp(sec, pub, 32), 0);

	cr_assert_eq(pki_key_read(tu_path(pdir, "broker.key"), sec, pub, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(pki_cert_read(tu_path(pdir, "broker.crt"), &c, err,
	    sizeof(err)), 0);
	cr_assert_eq(memcmp(pub, c.key, 32), 0);
}

Test(pki, key_file_writable_by_others_is_refused)
{
	static const mode_t	modes[] = { 0662, 0620, 0602, 0660, 0666 };
	uint8_t			sec[32], pub[32];
	char			err[256], want[PATH_MAX + 128];
	const char		*key = tu_path(pdir, "keys/cjit.leeds.key");
	size_t			i;

	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		cr_assert_eq(chmod(key, modes[i]), 0);
		cr_expect_eq(pki_key_read(key, sec, pub, err, sizeof(err)), -1,
		    "mode %o", (unsigned)modes[i]);
		snprintf(want, sizeof(want), "%s: key file mode %04o lets "
		    "group or others write it; chmod 600 it", key,
		    (unsigned)modes[i]);
		cr_expect_str_eq(err, want);
	}
	/* Readable by others: used, with a warning in the log. */
	cr_assert_eq(chmod(key, 0644), 0);
	cr_assert_eq(pki_key_read(key, sec, pub, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(chmod(key, 0400), 0);
	cr_assert_eq(pki_key_read(key, sec, pub, err, sizeof(err)), 0, "%s",
	    err);
}

Test(pki, key_read_refuses_what_is_not_an_x25519_key)
{
	uint8_t	sec[32], pub[32];
	char	err[256], want[PATH_MAX + 64], f[PATH_MAX + 64];

	/* The CA key is Ed25519. */
	cr_assert_eq(pki_key_read(tu_path(pdir, "ca.key"), sec, pub, err,
	    sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s/ca.key: not an X25519 key", pdir);
	cr_assert_str_eq(err, want);

	snprintf(f, sizeof(f), "%s/keys/cert-%d.key", pdir, (int)getpid());
	cr_assert_eq(tu_sh("cp '%s/ca.crt' '%s' && chmod 600 '%s'", pdir, f,
	    f), 0);
	cr_assert_eq(pki_key_read(f, sec, pub, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "not an unencrypted PEM private key"),
	    "%s", err);

	snprintf(f, sizeof(f), "%s/keys/enc-%d.key", pdir, (int)getpid());
	cr_assert_eq(tu_sh("openssl genpkey -algorithm x25519 -aes-128-cbc "
	    "-pass pass:secret -out '%s' 2>/dev/null && chmod 600 '%s'", f, f),
	    0);
	cr_assert_eq(pki_key_read(f, sec, pub, err, sizeof(err)), -1,
	    "an encrypted key is refused, not prompted for");
	cr_assert_not_null(strstr(err, "not an unencrypted PEM private key"),
	    "%s", err);
}

Test(pki, z85_and_fingerprint)
{
	uint8_t	key[32], back[32];
	char	z[41], fp[17], fp2[17];
	size_t	i;

	for (i = 0; i < sizeof(key); i++)
		key[i] = (uint8_t)(i * 7 + 1);
	pki_z85(key, z);
	cr_assert_eq(strlen(z), 40);
	cr_assert_not_null(zmq_z85_decode(back, z));
	cr_assert_eq(memcmp(key, back, 32), 0);

	pki_fingerprint(key, fp);
	cr_assert_eq(strlen(fp), 16);
	cr_assert_eq(strspn(fp, "0123456789abcdef"), 16);
	key[31] ^= 1;
	pki_fingerprint(key, fp2);
	cr_assert_str_neq(fp, fp2);
	/* SHA-256 of 32 zero bytes begins 66687aadf862bd77. */
	memset(key, 0, sizeof(key));
	pki_fingerprint(key, fp);
	cr_assert_str_eq(fp, "66687aadf862bd77");
}

/*
 * Fingerprints: the first 8 bytes of SHA-256 in lower-case hex, the form
 * the logs and audit entries have always had.  Digests computed with
 * python3: hashlib.sha256(bytes(key)).hexdigest()[:16].
 */
Test(pki, fingerprint_is_sha256_prefix_in_lower_case_hex)
{
	static const struct {
		int		 first, step;	/* key[i] = first + i * step */
		const char	*fp;
	} rows[] = {
		{ 0, 0, "66687aadf862bd77" },
		{ 1, 7, "8c731c199b130cb0" },
		{ 0, 1, "630dcd2966c43366" },
		{ 0xff, 0, "af9613760f72635f" },
	};
	uint8_t	key[32];
	char	fp[17];
	size_t	i, k;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		for (k = 0; k < sizeof(key); k++)
			key[k] = (uint8_t)(rows[i].first + k * rows[i].step);
		memset(fp, '#', sizeof(fp));
		pki_fingerprint(key, fp);
		cr_expect_str_eq(fp, rows[i].fp, "row %zu", i);
	}
}
