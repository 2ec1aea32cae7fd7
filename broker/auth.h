/*
 * auth.h - who may connect: the agency directory and the ZAP handler.
 *
 * A client's CURVE public key must equal the key of a certificate in the
 * agencies directory that chains to the CA, is inside its validity period
 * and is not on the CRL.  The ZAP user id is the agency id.
 */
#ifndef CC_AUTH_H
#define CC_AUTH_H

#include <stdint.h>
#include <time.h>

#include "config.h"
#include "pki.h"

#define ZAP_DOMAIN	"ccbroker"
#define ZAP_ENDPOINT	"inproc://zeromq.zap.01"

struct agency {
	struct pki_cert		 cert;		/* id, type, key, validity */
	const struct agency_conf *conf;		/* areas; NULL if unlisted */
};

struct auth {
	struct agency	*agency;	/* valid certificates only */
	size_t		 nagency;
	uint64_t	 refused;	/* handshakes refused since start */
	void		*zap;		/* REP socket bound to ZAP_ENDPOINT */
};

/*
 * Load every certificate of conf->agencies, check each against the CA and
 * CRL, and keep the valid ones (invalid ones are logged with the reason).
 * Returns 0, or -1 with err when the CA, CRL or directory cannot be read.
 * On reload, build a new struct and swap it in only on success.
 */
int		 auth_load(struct auth *, const struct broker_conf *,
		    char *err, size_t errlen) CC_WUR;
void		 auth_clear(struct auth *);

/* The agency with this id whose certificate is valid at `now`, or NULL. */
const struct agency *auth_agency(const struct auth *, const char *id,
		    time_t now);

/* Bind the ZAP socket in ctx.  Returns 0 or -1. */
int		 auth_zap_bind(struct auth *, void *ctx) CC_WUR;
void		 auth_zap_close(struct auth *);

/*
 * Answer one pending ZAP request on auth->zap: 200 with user id = agency id
 * (and metadata "Agency-Type") when the key belongs to a valid agency at
 * `now`, 400 otherwise.  Every refusal is logged with the agency (if known),
 * key fingerprint and reason, and counted in auth->refused; `refused_cb`
 * (if set) is called too so the audit can record it.
 */
typedef void	(*auth_refused_fn)(void *arg, const char *agency,
		    const char *fingerprint, const char *reason);
int		 auth_zap_handle(struct auth *, time_t now, auth_refused_fn,
		    void *arg);

#endif /* CC_AUTH_H */
