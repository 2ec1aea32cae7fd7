/*
 * config.c - broker.conf (DESIGN §8): one table of sections and keys,
 * read by proto/iniconf.c, and the default policy of DESIGN §7.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "iniconf.h"

_Static_assert(CONF_AREA_LEN == ICF_AREA_LEN, "area code buffers differ");

static void	*conf_agency_open(void *, const char *, char *, size_t);
static void	*conf_policy_open(void *, const char *, char *, size_t);
static int	 conf_areas(void *, const char *, char *, size_t);
static int	 conf_area_item(void *, const char *, size_t, char *, size_t);
static int	 conf_publish(void *, const char *, char *, size_t);
static int	 conf_receive(void *, const char *, char *, size_t);
static int	 conf_receive_item(void *, const char *, size_t, char *, size_t);

/* The quota keys, the same in [broker] and in [agency.ID]. */
#define QUOTA_KEYS(st)							\
	ICF_KEY_UINT("quota_queued", 0, st, quota.queued, 0, 1ULL << 40), \
	ICF_KEY_UINT("quota_queued_mb", 0, st, quota.queued_mb, 0,	\
	    1ULL << 30),						\
	ICF_KEY_UINT("quota_held", 0, st, quota.held, 0, 1ULL << 40),	\
	ICF_KEY_UINT("quota_held_mb", 0, st, quota.held_mb, 0, 1ULL << 30), \
	ICF_KEY_UINT("max_connections", 0, st, quota.connections, 0,	\
	    1ULL << 20)

static const struct iniconf_key conf_broker_keys[] = {
	ICF_KEY_STRING("bind", 0, struct broker_conf, bind),
	ICF_KEY_PATH("data", ICF_REQUIRED, struct broker_conf, data),
	ICF_KEY_PATH("certificate", ICF_REQUIRED | ICF_FILE,
	    struct broker_conf, certificate),
	ICF_KEY_PATH("key", ICF_REQUIRED | ICF_FILE, struct broker_conf, key),
	ICF_KEY_PATH("ca", ICF_REQUIRED | ICF_FILE, struct broker_conf, ca),
	/*
	 * DESIGN §3: revocation is never silently off.  The file itself is
	 * read (and a missing one refused) by the broker, not here: `stats`
	 * and `audit` must still run while it is being replaced.
	 */
	ICF_KEY_PATH("crl", ICF_REQUIRED, struct broker_conf, crl),
	ICF_KEY_PATH("agencies", ICF_REQUIRED | ICF_DIR, struct broker_conf,
	    agencies),
	ICF_KEY_UINT("map_size_mb", 0, struct broker_conf, map_size_mb,
	    16, 1024 * 1024),
	ICF_KEY_UINT("retention_days", 0, struct broker_conf, retention_days,
	    1, 3650),
	ICF_KEY_UINT("max_size", 0, struct broker_conf, max_size,
	    1024, 16 * 1024 * 1024),
	ICF_KEY_UINT("window", 0, struct broker_conf, window, 1, 65536),
	ICF_KEY_UINT("audit_head_interval", 0, struct broker_conf,
	    audit_head_s, 1, 3600),
	ICF_KEY_UINT("consent_notice_days", 0, struct broker_conf,
	    consent_notice_days, 0, 3650),
	ICF_KEY_STRING("user", 0, struct broker_conf, user),
	QUOTA_KEYS(struct broker_conf),
	ICF_KEY_UINT("handshake_rate", 0, struct broker_conf, handshake_rate,
	    1, 1000000),
	ICF_KEY_UINT("handshake_burst", 0, struct broker_conf,
	    handshake_burst, 1, 1000000),
	ICF_KEY_END
};

static const struct iniconf_key conf_agency_keys[] = {
	ICF_KEY_FUNC("areas", ICF_REQUIRED, conf_areas),
	QUOTA_KEYS(struct agency_conf),
	ICF_KEY_END
};

static const struct iniconf_key conf_policy_keys[] = {
	ICF_KEY_FUNC("publish", 0, conf_publish),
	ICF_KEY_FUNC("receive", 0, conf_receive),
	ICF_KEY_BOOL("record_consent", 0, struct policy, record_consent),
	ICF_KEY_END
};

static const struct iniconf_section conf_sections[] = {
	{ "broker", ICF_REQUIRED, conf_broker_keys, NULL },
	{ "agency.", 0, conf_agency_keys, conf_agency_open },
	{ "policy.", 0, conf_policy_keys, conf_policy_open },
	ICF_SECTION_END
};

/* DESIGN §7: who may publish each record type. */
static const struct {
	enum cc_rtype	rtype;
	unsigned	atypes;		/* bit mask of 1 << enum cc_atype */
} conf_publishers[] = {
	{ RT_RELEASE_PLAN, 1u << AT_PRISON_CARAT },
	{ RT_HANDOVER, 1u << AT_PRISON_CARAT },
	{ RT_REFERRAL, 1u << AT_CJIT | 1u << AT_PRISON_CARAT | 1u << AT_HACS },
	{ RT_HOUSING_STATUS, 1u << AT_HOUSING_PROVIDER | 1u << AT_LA_HOUSING |
	    1u << AT_CJIT | 1u << AT_HACS },
};

#define CONF_RECEIVE_COMMUNITY (CATSET(CAT_IDENTITY) | \
	CATSET(CAT_CRIMINAL_JUSTICE) | CATSET(CAT_TREATMENT_SUMMARY) | \
	CATSET(CAT_HOUSING) | CATSET(CAT_HOUSING_ADDRESS) | CATSET(CAT_CONTACTS))

/* DESIGN §7: the categories each agency type may ever receive. */
static const cc_catset conf_receive_default[AT__COUNT] = {
	[AT_PRISON_CARAT] = CATSET_ALL,
	[AT_CJIT] = CATSET_ALL,
	[AT_TREATMENT_PROVIDER] = CATSET_ALL,
	[AT_PROBATION] = CONF_RECEIVE_COMMUNITY | CATSET(CAT_CJ_IDENTIFIERS),
	[AT_HACS] = CATSET_ALL & ~CATSET(CAT_TREATMENT_CLINICAL),
	[AT_HOUSING_PROVIDER] = CONF_RECEIVE_COMMUNITY | CATSET(CAT_NARRATIVE),
	[AT_LA_HOUSING] = CONF_RECEIVE_COMMUNITY | CATSET(CAT_NARRATIVE),
	[AT_BROKER] = 0,
};

/* DESIGN §7: who may record consent. */
static const unsigned conf_record_consent = 1u << AT_PRISON_CARAT |
    1u << AT_CJIT | 1u << AT_PROBATION;

void
policy_default(enum cc_atype type, struct policy *p)
{
	size_t	i;

	memset(p, 0, sizeof(*p));
	if ((unsigned)type >= AT__COUNT)
		return;
	for (i = 0; i < sizeof(conf_publishers) / sizeof(conf_publishers[0]);
	    i++)
		if (conf_publishers[i].atypes & (1u << type))
			p->publish |= 1u << conf_publishers[i].rtype;
	p->receive = conf_receive_default[type];
	p->record_consent = (conf_record_consent & (1u << type)) != 0;
}

int
broker_conf_load(const char *path, struct broker_conf *bc, char *err,
    size_t errlen)
{
	int	i, n;

	memset(bc, 0, sizeof(*bc));
	n = snprintf(bc->path, sizeof(bc->path), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(bc->path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	snprintf(bc->bind, sizeof(bc->bind), "tcp://127.0.0.1:7450");
	bc->map_size_mb = 1024;
	bc->retention_days = 30;
	bc->max_size = CC_MAX_FRAME_DEFAULT;
	bc->window = 256;
	bc->audit_head_s = 60;
	bc->consent_notice_days = 28;
	bc->quota.connections = QUOTA_CONNECTIONS_DEFAULT;
	bc->handshake_rate = CONF_HANDSHAKE_RATE;
	bc->handshake_burst = CONF_HANDSHAKE_BURST;
	for (i = 0; i < AT__COUNT; i++)
		policy_default(i, &bc->policy[i]);

	if (iniconf_load(path, conf_sections, bc, err, errlen) == -1)
		goto fail;
	if (bc->bind[0] == '\0') {
		snprintf(err, errlen, "%s: bind must not be empty", path);
		goto fail;
	}
	return 0;
 fail:
	broker_conf_free(bc);
	return -1;
}

void
broker_conf_free(struct broker_conf *bc)
{
	free(bc->agency);
	bc->agency = NULL;
	bc->nagency = 0;
}

void
broker_conf_quota(const struct broker_conf *bc, const char *id,
    struct quota *q)
{
	const struct agency_conf	*a = broker_conf_agency(bc, id);

	*q = bc->quota;
	if (a == NULL)
		return;
	if (a->quota.queued != 0)
		q->queued = a->quota.queued;
	if (a->quota.queued_mb != 0)
		q->queued_mb = a->quota.queued_mb;
	if (a->quota.held != 0)
		q->held = a->quota.held;
	if (a->quota.held_mb != 0)
		q->held_mb = a->quota.held_mb;
	if (a->quota.connections != 0)
		q->connections = a->quota.connections;
}

const struct agency_conf *
broker_conf_agency(const struct broker_conf *bc, const char *id)
{
	size_t	i;

	for (i = 0; i < bc->nagency; i++)
		if (strcmp(bc->agency[i].id, id) == 0)
			return &bc->agency[i];
	return NULL;
}

/* [agency.ID]: a new entry in the agency list. */
static void *
conf_agency_open(void *conf, const char *id, char *why, size_t whylen)
{
	struct broker_conf	*bc = conf;
	struct agency_conf	*a;
	size_t			 i;

	if (!cc_agency_id_valid(id, strlen(id))) {
		snprintf(why, whylen, "'%s' is not an agency id "
		    "([a-z0-9.-]{3,64})", id);
		return NULL;
	}
	/* Given again: read on into the same entry. */
	for (i = 0; i < bc->nagency; i++)
		if (strcmp(bc->agency[i].id, id) == 0)
			return &bc->agency[i];
	a = reallocarray(bc->agency, bc->nagency + 1, sizeof(*a));
	if (a == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	bc->agency = a;
	a = &bc->agency[bc->nagency++];
	memset(a, 0, sizeof(*a));
	snprintf(a->id, sizeof(a->id), "%s", id);
	return a;
}

/* [policy.TYPE]: the policy of an agency type, defaults already in. */
static void *
conf_policy_open(void *conf, const char *type, char *why, size_t whylen)
{
	struct broker_conf	*bc = conf;
	int			 t;

	if ((t = cc_atype_parse(type, strlen(type))) == -1) {
		snprintf(why, whylen, "'%s' is not an agency type", type);
		return NULL;
	}
	return &bc->policy[t];
}

static int
conf_areas(void *obj, const char *value, char *why, size_t whylen)
{
	struct agency_conf	*a = obj;

	a->nareas = 0;
	return iniconf_list(value, conf_area_item, a, why, whylen);
}

static int
conf_area_item(void *arg, const char *s, size_t len, char *why,
    size_t whylen)
{
	struct agency_conf	*a = arg;

	return iniconf_area_add(a->areas, &a->nareas, CONF_AREAS_MAX, s, len,
	    why, whylen);
}

static int
conf_publish(void *obj, const char *value, char *why, size_t whylen)
{
	struct policy	*p = obj;

	return iniconf_rtypes(value, &p->publish, why, whylen);
}

static int
conf_receive(void *obj, const char *value, char *why, size_t whylen)
{
	struct policy	*p = obj;

	p->receive = 0;
	return iniconf_list(value, conf_receive_item, p, why, whylen);
}

static int
conf_receive_item(void *arg, const char *s, size_t len, char *why,
    size_t whylen)
{
	struct policy	*p = arg;
	int		 c;

	if (len == 3 && memcmp(s, "all", 3) == 0) {
		p->receive = CATSET_ALL;
		return 0;
	}
	if ((c = cc_cat_parse(s, len)) == -1) {
		snprintf(why, whylen, "'%.*s' is not a data category",
		    (int)(len > 64 ? 64 : len), s);
		return -1;
	}
	p->receive |= CATSET(c);
	return 0;
}
