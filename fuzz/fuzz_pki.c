/*
 * fuzz_pki.c - libFuzzer harness for certificate, CRL and key loading
 * (proto/pki.c): the agencies directory and the CRL are files anyone with
 * access to the partnership's share may have written.
 *
 * An input that starts as PEM is written as it is; anything else is taken
 * as DER and wrapped into PEM, so that the fuzzer mutates the structure
 * rather than base64: as a PRIVATE KEY when it looks like PKCS#8 (a
 * SEQUENCE opening with an INTEGER), else as a CERTIFICATE and an X509 CRL.
 * A certificate is then read as an agency's (against the example
 * partnership's CA and CRL), as our own, and as a CA; a CRL as the example
 * CA's; a key as a private key.  Only what the file holds is tried: OpenSSL
 * 3 decodes keys slowly, and every attempt costs executions.
 */
#define _GNU_SOURCE	/* memmem */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pki.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void	fuzz_cleanup(void);
static void	fuzz_fail(const char *, const char *) __attribute__((noreturn));
static void	put(int, const void *, size_t);
static void	put_pem(int, const char *, const uint8_t *, size_t);
static void	check_reason(const char *, const char *);
static int	der_is_key(const uint8_t *, size_t);
static void	try_cert(void);
static void	try_crl(void);

/* The example partnership; FUZZ_PKI_DIR overrides (make runs from the top). */
#define FUZZ_PKI_DEFAULT	"certs-example/partnership"

static char		 fuzz_path[64];
static char		 fuzz_ca[PATH_MAX], fuzz_crl[PATH_MAX];
static char		 fuzz_leaf[PATH_MAX];
static struct pki_ca	*fuzz_store;	/* example CA and CRL */
static time_t		 fuzz_now;	/* inside the example's validity */

static void
fuzz_fail(const char *what, const char *why)
{
	fprintf(stderr, "fuzz_pki: %s%s%s\n", what, why ? ": " : "",
	    why ? why : "");
	abort();
}

static void
fuzz_cleanup(void)
{
	pki_ca_destroy(&fuzz_store);
	if (fuzz_path[0] != '\0')
		(void)unlink(fuzz_path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char	*dir = getenv("FUZZ_PKI_DIR");
	struct pki_cert	 ca;
	char		 err[512];

	(void)argc;
	(void)argv;
	if (dir == NULL || *dir == '\0')
		dir = FUZZ_PKI_DEFAULT;
	snprintf(fuzz_ca, sizeof(fuzz_ca), "%s/ca.crt", dir);
	snprintf(fuzz_crl, sizeof(fuzz_crl), "%s/ca.crl", dir);
	snprintf(fuzz_leaf, sizeof(fuzz_leaf), "%s/agencies/cjit.leeds.crt",
	    dir);
	if ((fuzz_store = pki_ca_load(fuzz_ca, fuzz_crl, err,
	    sizeof(err))) == NULL)
		fuzz_fail("cannot load the example CA (set FUZZ_PKI_DIR)", err);
	/* The CA's key is Ed25519, so this "fails" after reading it. */
	(void)pki_cert_read(fuzz_ca, &ca, err, sizeof(err));
	if (ca.not_before == 0)
		fuzz_fail("cannot read the example CA's dates", err);
	fuzz_now = ca.not_before + 86400;
	/* On tmpfs when there is one: ext4 truncation waits for discard. */
	snprintf(fuzz_path, sizeof(fuzz_path), "%s/ccfuzz-pki-%d.pem",
	    access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp",
	    (int)getpid());
	atexit(fuzz_cleanup);
	return 0;
}

static void
put(int fd, const void *buf, size_t len)
{
	const uint8_t	*p = buf;
	ssize_t		 n;

	while (len > 0) {
		if ((n = write(fd, p, len)) <= 0)
			fuzz_fail("cannot write the input file", NULL);
		p += n;
		len -= (size_t)n;
	}
}

/* One PEM block of the given label around der, 64 columns of base64. */
static void
put_pem(int fd, const char *label, const uint8_t *der, size_t len)
{
	unsigned char	line[66];
	size_t		i, n;
	int		w;

	dprintf(fd, "-----BEGIN %s-----\n", label);
	for (i = 0; i < len; i += 48) {
		n = len - i < 48 ? len - i : 48;
		w = EVP_EncodeBlock(line, der + i, (int)n);
		line[w] = '\n';
		put(fd, line, (size_t)w + 1);
	}
	dprintf(fd, "-----END %s-----\n", label);
}

/* A refusal gives a terminated, non-empty reason. */
static void
check_reason(const char *what, const char *err)
{
	if (err[0] == '\0' || strlen(err) >= 511)
		fuzz_fail(what, "refused without a reason");
}

/* A DER SEQUENCE whose first item is an INTEGER: PKCS#8's version. */
static int
der_is_key(const uint8_t *p, size_t len)
{
	size_t	off = 2;

	if (len < 3 || p[0] != 0x30)
		return 0;
	if (p[1] & 0x80)
		off += p[1] & 0x7f;
	return off < len && p[off] == 0x02;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t		 sec[32], pub[32];
	char		 err[512];
	int		 fd, is_cert, is_crl, is_key;

	if ((fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) == -1)
		fuzz_fail("cannot write the input file", NULL);
	if (size >= 5 && memcmp(data, "-----", 5) == 0) {
		put(fd, data, size);
		is_cert = memmem(data, size, "CERTIFICATE", 11) != NULL;
		is_crl = memmem(data, size, "X509 CRL", 8) != NULL;
		is_key = memmem(data, size, "PRIVATE KEY", 11) != NULL;
		if (!is_crl && !is_key)
			is_cert = 1;
	} else if ((is_key = der_is_key(data, size))) {
		is_cert = is_crl = 0;
		put_pem(fd, "PRIVATE KEY", data, size);
	} else {
		is_cert = is_crl = 1;
		put_pem(fd, "CERTIFICATE", data, size);
		put_pem(fd, "X509 CRL", data, size);
	}
	close(fd);

	if (is_cert)
		try_cert();
	if (is_crl)
		try_crl();
	if (is_key) {
		err[0] = '\0';
		if (pki_key_read(fuzz_path, sec, pub, err, sizeof(err)) == -1)
			check_reason("pki_key_read", err);
	}
	return 0;
}

/* The file as an agency's certificate, our own, and a CA. */
static void
try_cert(void)
{
	struct pki_cert	 cert;
	struct pki_ca	*ca;
	char		 err[512];

	err[0] = '\0';
	if (pki_cert_read(fuzz_path, &cert, err, sizeof(err)) == -1)
		check_reason("pki_cert_read", err);
	else if (memchr(cert.cn, '\0', sizeof(cert.cn)) == NULL ||
	    memchr(cert.ou, '\0', sizeof(cert.ou)) == NULL ||
	    memchr(cert.org, '\0', sizeof(cert.org)) == NULL ||
	    memchr(cert.serial, '\0', sizeof(cert.serial)) == NULL ||
	    cert.type < -1 || cert.type >= AT__COUNT)
		fuzz_fail("pki_cert_read", "bad certificate fields");

	err[0] = '\0';
	if (pki_cert_check(fuzz_store, fuzz_path, fuzz_now, &cert, err,
	    sizeof(err)) == -1)
		check_reason("pki_cert_check", err);
	else if (cert.type < 0 || !cc_agency_id_valid(cert.cn,
	    strlen(cert.cn)))
		fuzz_fail("pki_cert_check", "accepted a bad certificate");

	/* The input as a CA, checking a real agency's certificate. */
	err[0] = '\0';
	if ((ca = pki_ca_load(fuzz_path, NULL, err, sizeof(err))) == NULL)
		check_reason("pki_ca_load as CA", err);
	else {
		(void)pki_cert_check(ca, fuzz_leaf, fuzz_now, &cert, err,
		    sizeof(err));
		pki_ca_destroy(&ca);
	}

}

/* The file as the example CA's CRL. */
static void
try_crl(void)
{
	struct pki_cert	 cert;
	struct pki_ca	*ca;
	char		 err[512];

	err[0] = '\0';
	if ((ca = pki_ca_load(fuzz_ca, fuzz_path, err, sizeof(err))) == NULL)
		check_reason("pki_ca_load as CRL", err);
	else {
		(void)pki_cert_check(ca, fuzz_leaf, fuzz_now, &cert, err,
		    sizeof(err));
		pki_ca_destroy(&ca);
	}
}
