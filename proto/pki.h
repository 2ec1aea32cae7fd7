/*
 * pki.h - the partnership's X.509 certificates carrying CurveZMQ keys.
 *
 * DESIGN §3: every certificate's public key is X25519 and is the holder's
 * CurveZMQ long-term key.  CN is the agency id, OU the agency type, O the
 * organisation.
 */
#ifndef CC_PKI_H
#define CC_PKI_H

#include <stdint.h>
#include <time.h>

#include "cc_proto.h"

struct pki_cert {
	char		cn[CC_ID_MAX + 1];
	int		type;		/* enum cc_atype, or -1 if OU unknown */
	char		ou[64];
	char		org[128];
	uint8_t		key[32];	/* raw X25519 public key */
	time_t		not_before;
	time_t		not_after;
	char		serial[80];	/* hex, for logs */
};

struct pki_ca;	/* CA certificate and CRL in an X509_STORE */

/* Load the CA and (when crl is non-NULL and non-empty) its CRL.  Returns
 * NULL with "FILE: reason" in err on failure: unreadable, not PEM, not a CA
 * certificate, a CRL not signed by this CA. */
struct pki_ca	*pki_ca_load(const char *ca, const char *crl, char *err,
		    size_t errlen);
void		 pki_ca_destroy(struct pki_ca **);

/*
 * Is the loaded CRL in force at `now`: a CRL was loaded, it names its next
 * update, its last update is not after `now` and its next update not
 * before.  *next_update gets the next update whenever the CRL names one.
 * Returns 0, or -1 with a short reason (no file name) in err: "no CRL",
 * "CRL names no next update", "CRL past its next update (TIME)", "CRL not
 * yet valid (last update TIME)".
 */
int		 pki_ca_crl_check(const struct pki_ca *, time_t now,
		    time_t *next_update, char *err, size_t errlen) CC_WUR;

/*
 * Read a PEM certificate and check it: chains to the CA, within its validity
 * period at `now`, not revoked, X25519 key, CN a valid agency id, OU an
 * agency type.  Fills *out either way as far as it could be read.  Returns
 * 0 when valid, -1 with a short reason (no file name) in err: "revoked",
 * "expired", "not yet valid", "unknown issuer", "bad signature",
 * "CRL expired", "CA certificate expired", "not X25519", "CN is not an
 * agency id", "unknown agency type (OU)", or why it could not be read.
 * The CRL is judged before the dates, the CA's dates before the agency's.
 */
int		 pki_cert_check(struct pki_ca *, const char *path, time_t now,
		    struct pki_cert *out, char *err, size_t errlen) CC_WUR;

/* Read a PEM certificate without any check (for our own).  Returns 0, or
 * -1 with "FILE: reason" in err (unreadable, not PEM, key not X25519). */
int		 pki_cert_read(const char *path, struct pki_cert *out, char *err,
		    size_t errlen) CC_WUR;

/* Read an X25519 private key (PEM, PKCS#8) into raw secret and public
 * bytes.  Returns 0, or -1 with "FILE: reason" in err: a key file group or
 * others may use at all (mode & 077), not a regular file, encrypted (never
 * prompts), not X25519. */
int		 pki_key_read(const char *path, uint8_t sec[32], uint8_t pub[32],
		    char *err, size_t errlen) CC_WUR;

/* Z85 text (41 bytes with NUL) of a 32-byte key, via zmq_z85_encode. */
void		 pki_z85(const uint8_t key[32], char out[41]);

/* Short fingerprint of a key for logs: first 8 bytes of SHA-256, in lower
 * case hex (16 '?' if hashing fails). */
void		 pki_fingerprint(const uint8_t key[32], char out[17]);

#endif /* CC_PKI_H */
