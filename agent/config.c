/*
 * config.c - agent.conf (DESIGN §8): one table of keys, read by
 * proto/iniconf.c.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "iniconf.h"

_Static_assert(sizeof(((struct agent_conf *)0)->areas[0]) == ICF_AREA_LEN,
    "area code buffers differ");

static int	agent_conf_subscribe(void *, const char *, char *, size_t);
static int	agent_conf_areas(void *, const char *, char *, size_t);
static int	agent_conf_area(void *, const char *, size_t, char *, size_t);

static const struct iniconf_key agent_conf_keys[] = {
	ICF_KEY_STRING("broker", 0, struct agent_conf, broker),
	ICF_KEY_PATH("broker_certificate", ICF_REQUIRED | ICF_FILE,
	    struct agent_conf, broker_certificate),
	ICF_KEY_PATH("ca", ICF_REQUIRED | ICF_FILE, struct agent_conf, ca),
	ICF_KEY_PATH("crl", ICF_FILE, struct agent_conf, crl),
	ICF_KEY_PATH("certificate", ICF_REQUIRED | ICF_FILE, struct agent_conf,
	    certificate),
	ICF_KEY_PATH("key", ICF_REQUIRED | ICF_FILE, struct agent_conf, key),
	ICF_KEY_PATH("data", ICF_REQUIRED, struct agent_conf, data),
	ICF_KEY_PATH("spool", ICF_REQUIRED, struct agent_conf, spool),
	ICF_KEY_FUNC("subscribe", 0, agent_conf_subscribe),
	ICF_KEY_FUNC("areas", 0, agent_conf_areas),
	ICF_KEY_STRING("user", 0, struct agent_conf, user),
	ICF_KEY_END
};

static const struct iniconf_section agent_conf_sections[] = {
	{ "agent", ICF_REQUIRED, agent_conf_keys, NULL },
	ICF_SECTION_END
};

int
agent_conf_load(const char *path, struct agent_conf *ac, char *err,
    size_t errlen)
{
	int	n;

	memset(ac, 0, sizeof(*ac));
	n = snprintf(ac->path, sizeof(ac->path), "%s", path);
	if (n < 0 || (size_t)n >= sizeof(ac->path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -1;
	}
	snprintf(ac->broker, sizeof(ac->broker), "tcp://127.0.0.1:7450");
	if (iniconf_load(path, agent_conf_sections, ac, err, errlen) == -1)
		return -1;
	if (ac->broker[0] == '\0') {
		snprintf(err, errlen, "%s: broker must not be empty", path);
		return -1;
	}
	return 0;
}

static int
agent_conf_subscribe(void *obj, const char *value, char *why, size_t whylen)
{
	struct agent_conf	*ac = obj;

	return iniconf_rtypes(value, &ac->subscribe, why, whylen);
}

static int
agent_conf_areas(void *obj, const char *value, char *why, size_t whylen)
{
	struct agent_conf	*ac = obj;

	ac->nareas = 0;
	return iniconf_list(value, agent_conf_area, ac, why, whylen);
}

static int
agent_conf_area(void *arg, const char *s, size_t len, char *why,
    size_t whylen)
{
	struct agent_conf	*ac = arg;

	return iniconf_area_add(ac->areas, &ac->nareas, AGENT_AREAS_MAX, s,
	    len, why, whylen);
}
