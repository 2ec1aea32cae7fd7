/*
 * auth.c - who may connect: the agency certificate directory, checked
 * against the CA and CRL, and the ZAP handler (ZMQ RFC 27) that admits a
 * CURVE client only when its key is that of a valid agency certificate.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "auth.h"
#include "log.h"

#define ZAP_VERSION	"1.0"
#define ZAP_MECHANISM	"CURVE"
#define ZAP_FRAMES_MAX	8	/* version .. credentials; more is malformed */
#define ZAP_META_TYPE	"Agency-Type"
#define ZAP_META_KEY	AUTH_META_KEY
#define AUTH_CRL_WARN_S	(7 * 86400)	/* a CRL this close to its end: warn */

/* The frames of a ZAP request, RFC 27. */
enum zap_frame {
	ZAPF_VERSION,
	ZAPF_REQUEST_ID,
	ZAPF_DOMAIN,
	ZAPF_ADDRESS,
	ZAPF_IDENTITY,
	ZAPF_MECHANISM,
	ZAPF_CREDENTIALS,
	ZAPF__COUNT
};

/* The outcome of a ZAP request, before it is answered. */
struct zap_answer {
	const char		*agency;	/* id, or NULL */
	const struct agency	*ok;		/* admitted agency, or NULL */
	const char		*reason;	/* refusal, or NULL */
	char			 fp[17];	/* key fingerprint */
	char			 address[64];	/* peer address, for logs */
};

static int	 auth_bad_add(struct auth_bad **, size_t *,
		    const struct pki_cert *, const char *);
static int	 auth_agency_cmp(const void *, const void *);
static bool	 auth_has_suffix(const char *, const char *);
static void	 auth_decide(const struct auth *, zmq_msg_t *, int, time_t,
		    int64_t, struct zap_answer *);
static bool	 zap_frame_is(zmq_msg_t *, const char *);
static int	 zap_reply(void *, zmq_msg_t *, const char *, const char *,
		    const struct agency *);
static int	 zap_send(void *, const void *, size_t, bool);
static size_t	 zap_prop(uint8_t *, size_t, const char *, const char *);
static const char *auth_quote(const char *, char *, size_t);

int
auth_load(struct auth *a, const struct broker_conf *bc, char *err,
    size_t errlen)
{
	struct pki_ca	*ca = NULL;
	struct agency	*ag = NULL, *tmp;
	struct auth_bad	*bad = NULL;
	struct pki_cert	 cert;
	struct dirent	*de;
	DIR		*dir = NULL;
	char		 path[PATH_MAX], why[64], q[80], when[32], crlwhy[128];
	size_t		 nag = 0, nbad = 0, i;
	time_t		 now = time(NULL), next_update = 0;
	int		 n, rc = -1;

	/*
	 * DESIGN §3: a CRL is required, and one that cannot be relied on now
	 * is refused whole, so that revocation never silently stops (and
	 * never silently turns every agency away at a reload).
	 */
	if (bc->crl[0] == '\0') {
		snprintf(err, errlen, "%s: no crl: a CRL is required",
		    bc->path[0] != '\0' ? bc->path : "broker.conf");
		goto fail;
	}
	if ((ca = pki_ca_load(bc->ca, bc->crl, err, errlen)) == NULL)
		goto fail;
	if (pki_ca_crl_check(ca, now, &next_update, crlwhy,
	    sizeof(crlwhy)) == -1) {
		snprintf(err, errlen, "%s: %s", bc->crl, crlwhy);
		goto fail;
	}
	if ((dir = opendir(bc->agencies)) == NULL) {
		snprintf(err, errlen, "%s: %s", bc->agencies, strerror(errno));
		goto fail;
	}
	for (;;) {
		errno = 0;
		if ((de = readdir(dir)) == NULL) {
			if (errno != 0) {
				snprintf(err, errlen, "%s: %s", bc->agencies,
				    strerror(errno));
				goto fail;
			}
			break;
		}
		if (de->d_name[0] == '.' || !auth_has_suffix(de->d_name, ".crt"))
			continue;
		n = snprintf(path, sizeof(path), "%s/%s", bc->agencies,
		    de->d_name);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			snprintf(err, errlen, "%s: path too long", bc->agencies);
			goto fail;
		}

		if (pki_cert_check(ca, path, now, &cert, why,
		    sizeof(why)) == -1)
			goto refuse;
		if (cert.type == AT_BROKER) {
			snprintf(why, sizeof(why), "a broker, not an agency");
			goto refuse;
		}
		for (i = 0; i < nag; i++) {
			if (memcmp(ag[i].cert.key, cert.key,
			    sizeof(cert.key)) == 0 &&
			    strcmp(ag[i].cert.cn, cert.cn) != 0) {
				snprintf(why, sizeof(why), "key of agency %s",
				    ag[i].cert.cn);
				goto refuse;
			}
		}
		if ((tmp = reallocarray(ag, nag + 1, sizeof(*ag))) == NULL) {
			snprintf(err, errlen, "%s", strerror(errno));
			goto fail;
		}
		ag = tmp;
		ag[nag].cert = cert;
		ag[nag].conf = broker_conf_agency(bc, cert.cn);
		if (ag[nag].conf == NULL)
			log_info("auth: agency=%s has no [agency.%s] section: "
			    "no areas", cert.cn, cert.cn);
		nag++;
		continue;
 refuse:
		log_warnx("auth: certificate %s refused agency=%s serial=%s "
		    "reason=%s", path, cert.cn[0] != '\0' ? cert.cn : "unknown",
		    cert.serial[0] != '\0' ? cert.serial : "unknown",
		    auth_quote(why, q, sizeof(q)));
		if (auth_bad_add(&bad, &nbad, &cert, why) == -1) {
			snprintf(err, errlen, "%s", strerror(errno));
			goto fail;
		}
	}
	if (nag > 1)
		qsort(ag, nag, sizeof(*ag), auth_agency_cmp);
	log_info("auth: %zu agencies valid, %zu certificates refused", nag,
	    nbad);
	cc_time_format((int64_t)next_update * 1000, when);
	if (next_update - now < AUTH_CRL_WARN_S)
		log_warnx("auth: CRL %s next update %s is less than %d days "
		    "away: publish a fresh CRL and reload before then, or "
		    "every handshake will be refused", bc->crl, when,
		    AUTH_CRL_WARN_S / 86400);
	else
		log_info("auth: CRL %s next update %s", bc->crl, when);

	auth_clear(a);
	a->agency = ag;
	a->nagency = nag;
	a->bad = bad;
	a->nbad = nbad;
	a->crl_next_update = next_update;
	ag = NULL;
	bad = NULL;
	rc = 0;
 fail:
	if (dir != NULL)
		closedir(dir);
	pki_ca_destroy(&ca);
	free(ag);
	free(bad);
	return rc;
}

void
auth_clear(struct auth *a)
{
	free(a->agency);
	a->agency = NULL;
	a->nagency = 0;
	free(a->bad);
	a->bad = NULL;
	a->nbad = 0;
}

bool
auth_crl_expired(const struct auth *a, time_t now)
{
	return now > a->crl_next_update;
}

/* Certificates of one id are sorted by not_before: the newest valid one
 * is the last valid one seen. */
const struct agency *
auth_agency(const struct auth *a, const char *id, time_t now)
{
	const struct agency	*found = NULL;
	size_t			 i;

	for (i = 0; i < a->nagency; i++)
		if (strcmp(a->agency[i].cert.cn, id) == 0 &&
		    now >= a->agency[i].cert.not_before &&
		    now <= a->agency[i].cert.not_after)
			found = &a->agency[i];
	return found;
}

const struct agency *
auth_agency_key(const struct auth *a, const char *id, const uint8_t key[32],
    time_t now)
{
	size_t	i;

	for (i = 0; i < a->nagency; i++)
		if (memcmp(a->agency[i].cert.key, key, 32) == 0 &&
		    strcmp(a->agency[i].cert.cn, id) == 0 &&
		    now >= a->agency[i].cert.not_before &&
		    now <= a->agency[i].cert.not_after)
			return &a->agency[i];
	return NULL;
}

int
auth_zap_bind(struct auth *a, void *ctx)
{
	void	*s;
	int	 linger = 0, saved;

	if ((s = zmq_socket(ctx, ZMQ_REP)) == NULL) {
		log_warnx("auth: zap socket: %s", zmq_strerror(errno));
		return -1;
	}
	if (zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger)) == -1 ||
	    zmq_bind(s, ZAP_ENDPOINT) == -1) {
		saved = errno;
		log_warnx("auth: zap bind %s: %s", ZAP_ENDPOINT,
		    zmq_strerror(saved));
		zmq_close(s);
		errno = saved;
		return -1;
	}
	a->zap = s;
	return 0;
}

void
auth_zap_close(struct auth *a)
{
	if (a->zap != NULL) {
		zmq_close(a->zap);
		a->zap = NULL;
	}
}

/* Answer one ZAP request: admit a valid agency's key, refuse the rest. */
int
auth_zap_handle(struct auth *a, time_t now, auth_refused_fn refused_cb,
    void *arg)
{
	zmq_msg_t		 f[ZAP_FRAMES_MAX], extra;
	struct zap_answer	 ans;
	char			 q[80];
	int64_t			 now_ms;
	int			 nf = 0, i, more, rc = -1, saved = 0;

	/* zmq_msg_init cannot fail (it only zeroes the message). */
	for (i = 0; i < ZAP_FRAMES_MAX; i++)
		(void)zmq_msg_init(&f[i]);
	(void)zmq_msg_init(&extra);

	/* Read the whole request; libzmq hands over all parts at once. */
	do {
		zmq_msg_t *m = nf < ZAP_FRAMES_MAX ? &f[nf] : &extra;

		if (zmq_msg_recv(m, a->zap, nf == 0 ? ZMQ_DONTWAIT : 0) == -1) {
			saved = errno;
			if (nf == 0 && saved == EAGAIN)
				rc = 0;
			else
				log_warnx("auth: zap receive: %s",
				    zmq_strerror(saved));
			goto fail;
		}
		more = zmq_msg_more(m);
		nf++;
	} while (more);

	now_ms = cc_time_now_ms();
	auth_decide(a, f, nf, now, now_ms, &ans);
	if (ans.ok != NULL) {
		log_info("auth: accepted agency=%s type=%s key=%s address=%s",
		    ans.ok->cert.cn, cc_atype_name(ans.ok->cert.type), ans.fp,
		    ans.address);
	} else {
		/* Counted and audited each; logged each only up to a budget. */
		a->refused++;
		if (a->limit == NULL || hslimit_log(a->limit, ans.address,
		    ans.reason, now_ms))
			log_warnx("auth: refused agency=%s key=%s reason=%s "
			    "address=%s", ans.agency != NULL ? ans.agency :
			    "unknown", ans.fp, auth_quote(ans.reason, q,
			    sizeof(q)), ans.address);
		if (refused_cb != NULL)
			refused_cb(arg, ans.agency, ans.fp, ans.reason,
			    ans.address);
	}
	if (zap_reply(a->zap, nf > ZAPF_REQUEST_ID ? &f[ZAPF_REQUEST_ID] : NULL,
	    ans.ok != NULL ? "200" : "400",
	    ans.ok != NULL ? "OK" : ans.reason, ans.ok) == -1) {
		saved = errno;
		log_warnx("auth: zap reply: %s", zmq_strerror(saved));
		goto fail;
	}
	rc = 1;
 fail:
	for (i = 0; i < ZAP_FRAMES_MAX; i++)
		zmq_msg_close(&f[i]);
	zmq_msg_close(&extra);
	if (rc == -1)
		errno = saved;
	return rc;
}

/*
 * Decide a ZAP request: a source address within its handshake rate, our
 * domain, CURVE, a CRL in force, and a key that is a valid agency's at
 * `now`.  Keys of certificates refused at load are named in the answer
 * so the log says which agency was turned away and why.
 */
static void
auth_decide(const struct auth *a, zmq_msg_t *f, int nf, time_t now,
    int64_t now_ms, struct zap_answer *ans)
{
	const struct agency	*ag;
	const uint8_t		*key;
	size_t			 i, len;

	memset(ans, 0, sizeof(*ans));
	memcpy(ans->fp, "-", 2);
	memcpy(ans->address, "-", 2);
	/* Mechanism NULL has no credentials frame: six frames at least. */
	if (nf < ZAPF_CREDENTIALS ||
	    !zap_frame_is(&f[ZAPF_VERSION], ZAP_VERSION)) {
		ans->reason = "malformed ZAP request";
		return;
	}
	len = zmq_msg_size(&f[ZAPF_ADDRESS]);
	if (len >= sizeof(ans->address))
		len = sizeof(ans->address) - 1;
	for (i = 0; i < len; i++) {
		char c = ((const char *)zmq_msg_data(&f[ZAPF_ADDRESS]))[i];

		ans->address[i] = (c > ' ' && c < 0x7f) ? c : '?';
	}
	ans->address[len] = '\0';
	if (len == 0)
		memcpy(ans->address, "-", 2);

	if (nf > ZAPF_CREDENTIALS && zmq_msg_size(&f[ZAPF_CREDENTIALS]) == 32)
		pki_fingerprint(zmq_msg_data(&f[ZAPF_CREDENTIALS]), ans->fp);

	/* Before anything is looked up: a flood costs a table probe each. */
	if (a->limit != NULL && !hslimit_take(a->limit, ans->address, now_ms)) {
		ans->reason = "rate limited";
		return;
	}

	if (!zap_frame_is(&f[ZAPF_DOMAIN], ZAP_DOMAIN)) {
		ans->reason = "wrong ZAP domain";
		return;
	}
	if (!zap_frame_is(&f[ZAPF_MECHANISM], ZAP_MECHANISM) ||
	    nf != ZAPF__COUNT || zmq_msg_size(&f[ZAPF_CREDENTIALS]) != 32) {
		ans->reason = "not CURVE";
		return;
	}
	key = zmq_msg_data(&f[ZAPF_CREDENTIALS]);

	/*
	 * A key may be in more than one certificate of the agency (a
	 * renewal keeps the key): any one valid now admits it, so an expired
	 * older certificate never shadows its renewal.
	 */
	for (i = 0; i < a->nagency; i++) {
		ag = &a->agency[i];
		if (memcmp(ag->cert.key, key, sizeof(ag->cert.key)) != 0)
			continue;
		ans->agency = ag->cert.cn;
		if (now < ag->cert.not_before)
			ans->reason = "not yet valid";
		else if (now > ag->cert.not_after)
			ans->reason = "expired";
		else if (auth_crl_expired(a, now)) {
			/*
			 * Fail closed: whether this certificate was revoked
			 * since cannot be known (DESIGN §3).
			 */
			ans->reason = "CRL expired";
			return;
		} else if (a->full) {
			ans->reason = "connection limit reached";
			return;
		} else {
			ans->ok = ag;
			ans->reason = NULL;
			return;
		}
	}
	if (ans->agency != NULL)
		return;
	for (i = 0; i < a->nbad; i++) {
		if (memcmp(a->bad[i].cert.key, key, 32) == 0) {
			if (a->bad[i].cert.cn[0] != '\0')
				ans->agency = a->bad[i].cert.cn;
			ans->reason = a->bad[i].reason;
			return;
		}
	}
	ans->reason = "unknown key";
}

/*
 * The reply of RFC 27: version, request id, status code, status text,
 * user id, metadata.  The metadata holds the agency type and the key
 * (Z85) that authenticated the connection, encoded as ZMTP properties:
 * name length (1 byte), name, value length (4 bytes, network order),
 * value.  Every message of the connection carries them (zmq_msg_gets).
 */
static int
zap_reply(void *zap, zmq_msg_t *reqid, const char *code, const char *text,
    const struct agency *ag)
{
	uint8_t		 meta[2 * (1 + 16 + 4 + 64)];
	char		 z85[41];
	size_t		 mlen = 0;

	if (ag != NULL) {
		if (zmq_z85_encode(z85, ag->cert.key, 32) == NULL)
			return -1;
		mlen = zap_prop(meta, mlen, ZAP_META_TYPE,
		    cc_atype_name(ag->cert.type));
		mlen = zap_prop(meta, mlen, ZAP_META_KEY, z85);
	}
	if (zap_send(zap, ZAP_VERSION, strlen(ZAP_VERSION), true) == -1 ||
	    zap_send(zap, reqid != NULL ? zmq_msg_data(reqid) : "",
	    reqid != NULL ? zmq_msg_size(reqid) : 0, true) == -1 ||
	    zap_send(zap, code, strlen(code), true) == -1 ||
	    zap_send(zap, text, strlen(text), true) == -1 ||
	    zap_send(zap, ag != NULL ? ag->cert.cn : "",
	    ag != NULL ? strlen(ag->cert.cn) : 0, true) == -1 ||
	    zap_send(zap, meta, mlen, false) == -1)
		return -1;
	return 0;
}

/* Append one ZMTP property (name and value at most 64 bytes each). */
static size_t
zap_prop(uint8_t *meta, size_t off, const char *name, const char *value)
{
	size_t	nlen = strlen(name), vlen = value != NULL ? strlen(value) : 0;

	if (vlen > 64)
		vlen = 64;
	meta[off++] = (uint8_t)nlen;
	memcpy(meta + off, name, nlen);
	off += nlen;
	meta[off++] = (uint8_t)(vlen >> 24);
	meta[off++] = (uint8_t)(vlen >> 16);
	meta[off++] = (uint8_t)(vlen >> 8);
	meta[off++] = (uint8_t)vlen;
	memcpy(meta + off, value, vlen);
	return off + vlen;
}

static int
zap_send(void *zap, const void *buf, size_t len, bool more)
{
	return zmq_send(zap, buf, len, more ? ZMQ_SNDMORE : 0) == -1 ? -1 : 0;
}

static bool
zap_frame_is(zmq_msg_t *m, const char *s)
{
	size_t	len = strlen(s);

	return zmq_msg_size(m) == len && memcmp(zmq_msg_data(m), s, len) == 0;
}

static int
auth_bad_add(struct auth_bad **bad, size_t *n, const struct pki_cert *cert,
    const char *why)
{
	struct auth_bad	*b;

	if ((b = reallocarray(*bad, *n + 1, sizeof(**bad))) == NULL)
		return -1;
	*bad = b;
	b = &b[(*n)++];
	b->cert = *cert;
	snprintf(b->reason, sizeof(b->reason), "%s", why);
	return 0;
}

static int
auth_agency_cmp(const void *va, const void *vb)
{
	const struct agency	*a = va, *b = vb;
	int			 c;

	if ((c = strcmp(a->cert.cn, b->cert.cn)) != 0)
		return c;
	return (a->cert.not_before > b->cert.not_before) -
	    (a->cert.not_before < b->cert.not_before);
}

static bool
auth_has_suffix(const char *s, const char *suffix)
{
	size_t	ls = strlen(s), lx = strlen(suffix);

	return ls > lx && strcmp(s + ls - lx, suffix) == 0;
}

/* A log value, quoted when it holds blanks (key=value logs). */
static const char *
auth_quote(const char *s, char *buf, size_t size)
{
	if (strchr(s, ' ') == NULL)
		return s;
	snprintf(buf, size, "\"%s\"", s);
	return buf;
}
