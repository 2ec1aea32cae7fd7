/*
 * auth.h - who may connect: the agency directory and the ZAP handler.
 *
 * A client's CURVE public key must equal the key of a certificate in the
 * agencies directory that chains to the CA, is inside its validity period
 * and is not on the CRL.  The ZAP user id is the agency id.
 */
#ifndef CC_AUTH_H
#define CC_AUTH_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "hslimit.h"
#include "pki.h"

#define ZAP_DOMAIN	"ccbroker"
/* The metadata property holding the key (Z85) a connection authenticated
 * with; every request and delivery is checked against its certificate. */
#define AUTH_META_KEY	"Key"
#define ZAP_ENDPOINT	"inproc://zeromq.zap.01"

struct agency {
	struct pki_cert		 cert;		/* id, type, key, validity */
	const struct agency_conf *conf;		/* areas; NULL if unlisted */
};

/* A certificate of the directory refused at load, kept to name it in logs. */
struct auth_bad {
	struct pki_cert		 cert;		/* as far as it could be read */
	char			 reason[64];	/* "revoked", "expired", ... */
};

struct auth {
	struct agency	*agency;	/* valid certificates only, by id */
	size_t		 nagency;
	uint64_t	 refused;	/* handshakes refused since start */
	void		*zap;		/* REP socket bound to ZAP_ENDPOINT */
	struct auth_bad	*bad;		/* certificates refused at load */
	size_t		 nbad;
	bool		 full;		/* refuse valid agencies too: the
					 * broker is at its connection limit */
	time_t		 crl_next_update; /* of the CRL in force: past it,
					 * every handshake is refused */
	struct hslimit	*limit;		/* handshakes per address, or NULL
					 * (not owned) */
};

/*
 * What `ccbroker stats` (another process) shows of the certificates in
 * force, recorded in the store under AUTH_STATUS_META: the last load
 * (start or reload), whether it failed and why, and the next update of the
 * CRL in force (a failed reload keeps the old one).
 */
#define AUTH_STATUS_META	"auth-status"
struct auth_status {
	int64_t		loaded_ms;	/* when the last load was tried */
	int64_t		crl_next_update; /* s since the epoch */
	uint8_t		ok;		/* it succeeded */
	uint8_t		pad[7];
	char		error[512];	/* why not; "" when ok */
};

/*
 * Load every certificate (*.crt) of conf->agencies, check each against the
 * CA and CRL at the current time, and keep the valid ones (invalid ones
 * are logged once with the reason, and kept aside in auth->bad).  Each
 * agency's conf points into `conf`, which must outlive the set.
 * Returns 0, or -1 with "FILE: reason" in err when the CA or directory
 * cannot be read, or the CRL is missing, cannot be read, is not the CA's,
 * names no next update, is past it or is not yet valid (DESIGN §3: a CRL
 * is required).  The struct must be zeroed before the first load.  The
 * new set replaces the old one only on success, and zap, refused, full
 * and limit are kept, so a reload may load into the live struct (or build
 * a new struct and swap it in).
 */
int		 auth_load(struct auth *, const struct broker_conf *,
		    char *err, size_t errlen) CC_WUR;
void		 auth_clear(struct auth *);

/* Is the CRL in force past its next update at `now`?  Every handshake is
 * refused then ("CRL expired") until a reload brings a fresh CRL. */
bool		 auth_crl_expired(const struct auth *, time_t now);

/* The agency with this id whose certificate is valid at `now` (the
 * newest, when several are), or NULL. */
const struct agency *auth_agency(const struct auth *, const char *id,
		    time_t now);
/* The certificate of agency `id` with this key, valid at `now`, or NULL:
 * what a connection authenticated with that key may still do (DESIGN §3,
 * service follows the key). */
const struct agency *auth_agency_key(const struct auth *, const char *id,
		    const uint8_t key[32], time_t now);

/* Bind the ZAP socket (ZMQ_REP on ZAP_ENDPOINT) in ctx, before any CURVE
 * server socket binds.  Returns 0, or -1 with errno set by libzmq. */
int		 auth_zap_bind(struct auth *, void *ctx) CC_WUR;
void		 auth_zap_close(struct auth *);

/*
 * Answer one pending ZAP request on auth->zap: 200 with user id = agency id
 * (and metadata "Agency-Type") when the key belongs to a valid agency at
 * `now`, 400 otherwise.  A source address past its handshake rate
 * (auth->limit) is refused first ("rate limited"), before any certificate
 * is looked at; past the CRL's next update every key is refused ("CRL
 * expired").  Every refusal is counted in auth->refused and logged with
 * the agency (if known), key fingerprint, reason and address, one by one
 * up to the log budget of auth->limit (hslimit.h) and summed up beyond;
 * `refused_cb` (if set) is called too so the audit can record it, with
 * agency NULL when the key is no agency's.  Call it when auth->zap polls
 * readable.  Returns 1 when a request was answered, 0 when none was
 * pending, -1 on a socket error (errno set).
 */
typedef void	(*auth_refused_fn)(void *arg, const char *agency,
		    const char *fingerprint, const char *reason,
		    const char *address);
int		 auth_zap_handle(struct auth *, time_t now, auth_refused_fn,
		    void *arg);

#endif /* CC_AUTH_H */
