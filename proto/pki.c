/*
 * pki.c - the partnership's X.509 certificates carrying CurveZMQ keys,
 * with OpenSSL 3.
 *
 * The CA signs with Ed25519; every leaf key is X25519 and so cannot sign
 * anything itself: a certificate is checked against the CA and the CRL
 * only, and its key is used by CurveZMQ.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <zmq.h>

#include "bytes.h"
#include "log.h"
#include "pki.h"

#define PKI_KEYFILE_MAX	16384	/* a PEM X25519 key is about 120 bytes */

struct pki_ca {
	X509_STORE	*store;
	X509		*ca;
	X509_CRL	*crl;		/* NULL when none was given */
};

static X509	*pki_load(const char *, struct pki_cert *, char *, size_t);
static int	 pki_name_field(const X509_NAME *, int, char *, size_t);
static int	 pki_time(const ASN1_TIME *, time_t *);
static const char *pki_verify_reason(int, int);
static const char *pki_ossl_reason(void);
static int	 pki_err(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
static int	 pki_no_password(char *, int, int, void *);

/* Verification failures in the words the logs and the tests use. */
static const struct {
	int		 code;
	const char	*reason;
} pki_reasons[] = {
	{ X509_V_ERR_CERT_REVOKED,			"revoked" },
	{ X509_V_ERR_CERT_HAS_EXPIRED,			"expired" },
	{ X509_V_ERR_CERT_NOT_YET_VALID,		"not yet valid" },
	{ X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,		"unknown issuer" },
	{ X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,	"unknown issuer" },
	{ X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE,	"unknown issuer" },
	{ X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,	"unknown issuer" },
	{ X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,		"unknown issuer" },
	{ X509_V_ERR_CERT_SIGNATURE_FAILURE,		"bad signature" },
	{ X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE,	"bad signature" },
	{ X509_V_ERR_UNABLE_TO_GET_CRL,			"no CRL from the issuer" },
	{ X509_V_ERR_CRL_HAS_EXPIRED,			"CRL expired" },
	{ X509_V_ERR_CRL_NOT_YET_VALID,			"CRL not yet valid" },
	{ X509_V_ERR_CRL_SIGNATURE_FAILURE,		"bad CRL signature" },
	{ X509_V_ERR_INVALID_CA,			"issuer is not a CA" },
};

struct pki_ca *
pki_ca_load(const char *ca, const char *crl, char *err, size_t errlen)
{
	struct pki_ca	*pc;
	FILE		*fp = NULL;
	EVP_PKEY	*capub;

	if ((pc = calloc(1, sizeof(*pc))) == NULL) {
		pki_err(err, errlen, "%s", strerror(errno));
		return NULL;
	}
	if ((fp = fopen(ca, "r")) == NULL) {
		pki_err(err, errlen, "%s: %s", ca, strerror(errno));
		goto fail;
	}
	if ((pc->ca = PEM_read_X509(fp, NULL, NULL, NULL)) == NULL) {
		pki_err(err, errlen, "%s: not a PEM certificate (%s)", ca,
		    pki_ossl_reason());
		goto fail;
	}
	(void)fclose(fp);
	fp = NULL;
	if (X509_check_ca(pc->ca) == 0) {
		pki_err(err, errlen, "%s: not a CA certificate", ca);
		goto fail;
	}
	if ((pc->store = X509_STORE_new()) == NULL ||
	    X509_STORE_add_cert(pc->store, pc->ca) != 1) {
		pki_err(err, errlen, "%s: %s", ca, pki_ossl_reason());
		goto fail;
	}

	if (crl == NULL || crl[0] == '\0')
		return pc;
	if ((fp = fopen(crl, "r")) == NULL) {
		pki_err(err, errlen, "%s: %s", crl, strerror(errno));
		goto fail;
	}
	if ((pc->crl = PEM_read_X509_CRL(fp, NULL, NULL, NULL)) == NULL) {
		pki_err(err, errlen, "%s: not a PEM CRL (%s)", crl,
		    pki_ossl_reason());
		goto fail;
	}
	(void)fclose(fp);
	fp = NULL;
	/* A CRL from another CA would silently revoke nothing. */
	if ((capub = X509_get0_pubkey(pc->ca)) == NULL ||
	    X509_CRL_verify(pc->crl, capub) != 1) {
		pki_err(err, errlen, "%s: not signed by the CA %s", crl, ca);
		goto fail;
	}
	if (X509_STORE_add_crl(pc->store, pc->crl) != 1) {
		pki_err(err, errlen, "%s: %s", crl, pki_ossl_reason());
		goto fail;
	}
	return pc;
 fail:
	if (fp != NULL)
		(void)fclose(fp);
	ERR_clear_error();
	pki_ca_destroy(&pc);
	return NULL;
}

void
pki_ca_destroy(struct pki_ca **pcp)
{
	struct pki_ca	*pc = *pcp;

	if (pc == NULL)
		return;
	X509_STORE_free(pc->store);
	X509_free(pc->ca);
	X509_CRL_free(pc->crl);
	free(pc);
	*pcp = NULL;
}

int
pki_ca_crl_check(const struct pki_ca *pc, time_t now, time_t *next_update,
    char *err, size_t errlen)
{
	const ASN1_TIME	*nt;
	time_t		 last, next;
	char		 when[32];

	*next_update = 0;
	if (pc->crl == NULL)
		return pki_err(err, errlen, "no CRL");
	if (pki_time(X509_CRL_get0_lastUpdate(pc->crl), &last) == -1)
		return pki_err(err, errlen, "CRL has a bad last update");
	/*
	 * nextUpdate is optional in X.509, and OpenSSL then never calls the
	 * CRL out of date: such a CRL would be relied on for ever.
	 */
	if ((nt = X509_CRL_get0_nextUpdate(pc->crl)) == NULL)
		return pki_err(err, errlen, "CRL names no next update");
	if (pki_time(nt, &next) == -1)
		return pki_err(err, errlen, "CRL has a bad next update");
	*next_update = next;
	if (now > next) {
		cc_time_format((int64_t)next * 1000, when);
		return pki_err(err, errlen, "CRL past its next update (%s)",
		    when);
	}
	if (now < last) {
		cc_time_format((int64_t)last * 1000, when);
		return pki_err(err, errlen, "CRL not yet valid (last update "
		    "%s)", when);
	}
	return 0;
}

int
pki_cert_check(struct pki_ca *pc, const char *path, time_t now,
    struct pki_cert *out, char *err, size_t errlen)
{
	X509_STORE_CTX	*ctx = NULL;
	X509		*x;
	EVP_PKEY	*pk;
	char		 why[256];
	int		 rc = -1, code;

	if ((x = pki_load(path, out, why, sizeof(why))) == NULL) {
		pki_err(err, errlen, "%s", why);
		return -1;
	}
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, pc->store, x, NULL) != 1) {
		pki_err(err, errlen, "%s", pki_ossl_reason());
		goto fail;
	}
	X509_STORE_CTX_set_time(ctx, 0, now);
	if (pc->crl != NULL)
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK);
	if (X509_verify_cert(ctx) != 1) {
		code = X509_STORE_CTX_get_error(ctx);
		pki_err(err, errlen, "%s", pki_verify_reason(code,
		    X509_STORE_CTX_get_error_depth(ctx)));
		goto fail;
	}

	/* No key at all when OpenSSL cannot parse it. */
	if ((pk = X509_get0_pubkey(x)) == NULL ||
	    EVP_PKEY_get_id(pk) != EVP_PKEY_X25519) {
		pki_err(err, errlen, "not X25519");
		goto fail;
	}
	if (!cc_agency_id_valid(out->cn, strlen(out->cn))) {
		pki_err(err, errlen, "CN is not an agency id");
		goto fail;
	}
	if (out->type == -1) {
		pki_err(err, errlen, "unknown agency type (OU)");
		goto fail;
	}
	rc = 0;
 fail:
	X509_STORE_CTX_free(ctx);
	X509_free(x);
	ERR_clear_error();
	return rc;
}

int
pki_cert_read(const char *path, struct pki_cert *out, char *err,
    size_t errlen)
{
	X509		*x;
	EVP_PKEY	*pk;
	char		 why[256];
	int		 rc = -1;

	if ((x = pki_load(path, out, why, sizeof(why))) == NULL) {
		pki_err(err, errlen, "%s: %s", path, why);
		return -1;
	}
	if ((pk = X509_get0_pubkey(x)) == NULL ||
	    EVP_PKEY_get_id(pk) != EVP_PKEY_X25519) {
		pki_err(err, errlen, "%s: key is not X25519", path);
		goto fail;
	}
	rc = 0;
 fail:
	X509_free(x);
	ERR_clear_error();
	return rc;
}

int
pki_key_read(const char *path, uint8_t sec[32], uint8_t pub[32], char *err,
    size_t errlen)
{
	struct stat	 sb;
	EVP_PKEY	*pk = NULL;
	BIO		*bio = NULL;
	char		*buf = NULL;
	size_t		 len, got = 0;
	ssize_t		 n;
	int		 fd, rc = -1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		pki_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) == -1) {
		pki_err(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		pki_err(err, errlen, "%s: not a regular file", path);
		goto fail;
	}
	/*
	 * The key is the agency's identity.  One that others could replace
	 * is refused; one that others could read is used with a warning,
	 * since partnership tooling often writes keys with the default umask
	 * and refusing would stop a service over a fixable mode.
	 */
	if (sb.st_mode & 022) {
		pki_err(err, errlen, "%s: key file mode %04o lets group or "
		    "others write it; chmod 600 it", path,
		    (unsigned)(sb.st_mode & 07777));
		goto fail;
	}
	if (sb.st_mode & 044)
		log_warnx("%s: key file mode %04o lets group or others read "
		    "it; chmod 600 it", path, (unsigned)(sb.st_mode & 07777));
	if (sb.st_size <= 0 || sb.st_size > PKI_KEYFILE_MAX) {
		pki_err(err, errlen, "%s: not a key file (size %lld)", path,
		    (long long)sb.st_size);
		goto fail;
	}
	len = (size_t)sb.st_size;
	if ((buf = malloc(len)) == NULL) {
		pki_err(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	while (got < len) {
		if ((n = read(fd, buf + got, len - got)) == -1) {
			if (errno == EINTR)
				continue;
			pki_err(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if ((bio = BIO_new_mem_buf(buf, (int)got)) == NULL) {
		pki_err(err, errlen, "%s: %s", path, pki_ossl_reason());
		goto fail;
	}
	if ((pk = PEM_read_bio_PrivateKey(bio, NULL, pki_no_password,
	    NULL)) == NULL) {
		pki_err(err, errlen, "%s: not an unencrypted PEM private key "
		    "(%s)", path, pki_ossl_reason());
		goto fail;
	}
	if (EVP_PKEY_get_id(pk) != EVP_PKEY_X25519) {
		pki_err(err, errlen, "%s: not an X25519 key", path);
		goto fail;
	}
	len = 32;
	if (EVP_PKEY_get_raw_private_key(pk, sec, &len) != 1 || len != 32) {
		pki_err(err, errlen, "%s: cannot extract the key", path);
		goto fail;
	}
	len = 32;
	if (EVP_PKEY_get_raw_public_key(pk, pub, &len) != 1 || len != 32) {
		pki_err(err, errlen, "%s: cannot extract the public key", path);
		goto fail;
	}
	rc = 0;
 fail:
	if (rc == -1)
		OPENSSL_cleanse(sec, 32);
	EVP_PKEY_free(pk);
	BIO_free(bio);
	if (buf != NULL) {
		OPENSSL_cleanse(buf, got);
		free(buf);
	}
	(void)close(fd);
	ERR_clear_error();
	return rc;
}

void
pki_z85(const uint8_t key[32], char out[41])
{
	if (zmq_z85_encode(out, key, 32) == NULL)
		out[0] = '\0';
}

void
pki_fingerprint(const uint8_t key[32], char out[17])
{
	unsigned char	md[EVP_MAX_MD_SIZE];
	unsigned int	mdlen = 0;

	if (EVP_Digest(key, 32, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < 8) {
		ERR_clear_error();
		memcpy(out, "????????????????", 17);
		return;
	}
	(void)cc_hex(md, 8, out);
}

/*
 * Read a PEM certificate and fill *out with what it says (out->type is -1
 * when the OU is no agency type, the key zero when not X25519).  Returns
 * the certificate, or NULL with a reason in why.
 */
static X509 *
pki_load(const char *path, struct pki_cert *out, char *why, size_t whylen)
{
	X509		*x = NULL;
	FILE		*fp;
	const X509_NAME	*subj;
	EVP_PKEY	*pk;
	BIGNUM		*bn = NULL;
	char		*hex = NULL;
	size_t		 len;

	memset(out, 0, sizeof(*out));
	out->type = -1;
	if ((fp = fopen(path, "r")) == NULL) {
		pki_err(why, whylen, "%s", strerror(errno));
		return NULL;
	}
	x = PEM_read_X509(fp, NULL, NULL, NULL);
	(void)fclose(fp);
	if (x == NULL) {
		pki_err(why, whylen, "not a PEM certificate (%s)",
		    pki_ossl_reason());
		goto fail;
	}

	if ((subj = X509_get_subject_name(x)) == NULL) {
		pki_err(why, whylen, "no subject name");
		goto fail;
	}
	if (pki_name_field(subj, NID_commonName, out->cn,
	    sizeof(out->cn)) == -1) {
		pki_err(why, whylen, "CN is not an agency id");
		goto fail;
	}
	if (pki_name_field(subj, NID_organizationalUnitName, out->ou,
	    sizeof(out->ou)) == -1) {
		pki_err(why, whylen, "bad OU");
		goto fail;
	}
	if (pki_name_field(subj, NID_organizationName, out->org,
	    sizeof(out->org)) == -1) {
		pki_err(why, whylen, "bad O");
		goto fail;
	}
	out->type = cc_atype_parse(out->ou, strlen(out->ou));

	if ((pk = X509_get0_pubkey(x)) != NULL &&
	    EVP_PKEY_get_id(pk) == EVP_PKEY_X25519) {
		len = sizeof(out->key);
		if (EVP_PKEY_get_raw_public_key(pk, out->key, &len) != 1 ||
		    len != sizeof(out->key)) {
			pki_err(why, whylen, "cannot extract the key");
			goto fail;
		}
	}
	if (pki_time(X509_get0_notBefore(x), &out->not_before) == -1 ||
	    pki_time(X509_get0_notAfter(x), &out->not_after) == -1) {
		pki_err(why, whylen, "bad validity dates");
		goto fail;
	}
	if ((bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL)) == NULL ||
	    (hex = BN_bn2hex(bn)) == NULL) {
		pki_err(why, whylen, "bad serial number");
		goto fail;
	}
	(void)snprintf(out->serial, sizeof(out->serial), "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
	return x;
 fail:
	BN_free(bn);
	X509_free(x);
	ERR_clear_error();
	return NULL;
}

/*
 * One attribute of a name, as UTF-8, into buf.  Returns 0 (buf "" when the
 * attribute is absent), or -1 when it appears twice, holds a NUL or does
 * not fit.
 */
static int
pki_name_field(const X509_NAME *name, int nid, char *buf, size_t size)
{
	const X509_NAME_ENTRY	*ent;
	const ASN1_STRING	*data;
	unsigned char		*utf = NULL;
	int			 i, len, rc = -1;

	buf[0] = '\0';
	if ((i = X509_NAME_get_index_by_NID(name, nid, -1)) < 0)
		return 0;
	if (X509_NAME_get_index_by_NID(name, nid, i) >= 0)
		return -1;
	if ((ent = X509_NAME_get_entry(name, i)) == NULL ||
	    (data = X509_NAME_ENTRY_get_data(ent)) == NULL ||
	    (len = ASN1_STRING_to_UTF8(&utf, data)) < 0)
		goto fail;
	if ((size_t)len >= size || memchr(utf, '\0', (size_t)len) != NULL)
		goto fail;
	memcpy(buf, utf, (size_t)len);
	buf[len] = '\0';
	rc = 0;
 fail:
	OPENSSL_free(utf);
	return rc;
}

static int
pki_time(const ASN1_TIME *t, time_t *out)
{
	struct tm	tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return -1;
	*out = timegm(&tm);
	return 0;
}

/* A short reason for a verification error; the CA's own dates say so. */
static const char *
pki_verify_reason(int code, int depth)
{
	size_t	i;

	if (depth > 0 && code == X509_V_ERR_CERT_HAS_EXPIRED)
		return "CA certificate expired";
	if (depth > 0 && code == X509_V_ERR_CERT_NOT_YET_VALID)
		return "CA certificate not yet valid";
	for (i = 0; i < sizeof(pki_reasons) / sizeof(pki_reasons[0]); i++)
		if (pki_reasons[i].code == code)
			return pki_reasons[i].reason;
	return X509_verify_cert_error_string(code);
}

/* The reason of OpenSSL's latest error, for a message. */
static const char *
pki_ossl_reason(void)
{
	const char	*r;

	r = ERR_reason_error_string(ERR_peek_last_error());
	return r != NULL ? r : "unknown error";
}

/* Encrypted keys are not supported: never prompt for a password. */
static int
pki_no_password(char *buf, int size, int rwflag, void *arg)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)arg;
	return -1;
}

static int
pki_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		(void)vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}
