/*
 * proto_testutil.h - shared by the proto/ unit tests: example messages of
 * every op and record type, written as JSON with single quotes so the
 * tables stay readable, and helpers to mutate them and turn them into
 * frames.  The JSON->msgpack packer here is the test's own, so a bug in
 * proto/json.c cannot hide one in proto/codec.c.
 */
#ifndef PROTO_TESTUTIL_H
#define PROTO_TESTUTIL_H

#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <msgpack.h>

#include "cc_proto.h"

#define NITEMS(a)	(sizeof(a) / sizeof((a)[0]))

/* Example messages: op included, v left for the helpers to add. */
static const struct {
	const char	*name;
	const char	*json;
} examples[] = {
	{ "release-plan",
	  "{'op':'publish','mid':'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f',"
	  "'type':'release-plan','purpose':'continuity-of-care',"
	  "'subject':{'pnc':'2004/0012345D','noms':'A1234BC','crn':'X123456'},"
	  "'area':'E08000035','created':'2026-05-01T09:00:00Z',"
	  "'expires':'2026-06-01T09:00:00Z',"
	  "'body':{'person':{'family_name':'Testperson','given_name':'Alex',"
	  "'dob':'1985-03-14','sex':'M'},'establishment':'LEI',"
	  "'release_date':'2026-12-20','release_type':'licence',"
	  "'on_licence':true,'in_treatment':true,"
	  "'treatment_modality':'prescribing','overdose_risk_briefed':true,"
	  "'substitute_medication':'methadone','dose_mg':60,"
	  "'last_dose':'2026-12-20T08:00:00Z','primary_substance':'heroin',"
	  "'accommodation_need':'nfa-urgent',"
	  "'accommodation_on_release':'hostel',"
	  "'housing_actions':['HACS referral made to council housing options'],"
	  "'release_address':{'line1':'1 Hostel Row','line2':'Holbeck',"
	  "'town':'Leeds','postcode':'LS11 9AA'},"
	  "'offender_manager':{'name':'Sam Officer','agency':'probation.leeds',"
	  "'phone':'0113 000 0000','email':'sam.officer@example.org'},"
	  "'keyworker':{'name':'Kim Worker','agency':'HMP Leeds CARAT'},"
	  "'first_appointment':{'agency':'cjit.leeds',"
	  "'at':'2026-12-21T10:00:00Z','location':'Leeds CJIT, Park Street'},"
	  "'notes':'Client anxious about release; wants to stay out of the "
	  "city centre.'}}" },
	{ "handover",
	  "{'op':'publish','mid':'0b6a4c57-1d2e-4f3a-9b8c-7d6e5f4a3b2c',"
	  "'type':'handover','purpose':'continuity-of-care',"
	  "'subject':{'pnc':'1999/7654321V'},'area':'E08000035',"
	  "'to':['cjit.leeds'],'created':'2026-05-01T09:00:00.250Z',"
	  "'body':{'person':{'family_name':'Other','given_name':'Jo',"
	  "'dob':'1990-02-28','sex':'F'},'establishment':'LEI',"
	  "'release_date':'2026-12-20','dir_ref':'DIR/2026/0042',"
	  "'handover_status':'offered','in_treatment':true,"
	  "'treatment_modality':'prescribing','injecting_status':'previous',"
	  "'primary_substance':'heroin','secondary_substance':'crack cocaine',"
	  "'substitute_medication':'buprenorphine','dose_mg':12.5,"
	  "'last_dose':'2026-12-19',"
	  "'prison_treatment':[{'modality':'detox','start':'2026-01-05',"
	  "'end':'2026-02-05'},{'modality':'psychosocial',"
	  "'start':'2026-02-06'}],"
	  "'accommodation_need':'housing-problem',"
	  "'accommodation_on_release':'approved-premises',"
	  "'carat_worker':{'name':'Cara Worker','phone':'0113 111 1111'},"
	  "'offender_manager':{'name':'Sam Officer'},"
	  "'gp_practice':{'name':'Park Surgery','phone':'0113 222 2222'},"
	  "'notes':'Engaged well with the CARAT team.'}}" },
	{ "referral",
	  "{'op':'publish','mid':'a3b2c1d0-e9f8-4a7b-8c6d-5e4f3a2b1c0d',"
	  "'type':'referral','purpose':'housing-support',"
	  "'subject':{'pnc':'2019/0000001P','crn':'X123456'},"
	  "'area':'E08000035','to':['housing.leeds-hostels'],"
	  "'created':'2026-05-02T11:30:00Z',"
	  "'body':{'person':{'family_name':'Third','given_name':'Sam'},"
	  "'referral_service':'supported-housing','required_from':'2026-12-20',"
	  "'accommodation_need':'nfa-urgent',"
	  "'current_accommodation':'custody','local_connection':'E08000035',"
	  "'household':{'adults':1,'dependants':0},"
	  "'support_needs':['substance-misuse','debt','life-skills'],"
	  "'risk_flags':{'arson':false,'sexual_offence':false,"
	  "'violence':true},'in_treatment':true,"
	  "'referrer':{'name':'Casey CJIT','agency':'cjit.leeds',"
	  "'email':'casey@example.org'},'client_phone':'07700 900000',"
	  "'notes':'Prefers a placement away from the city centre.'}}" },
	{ "housing-status",
	  "{'op':'publish','mid':'c0ffee00-1234-4abc-9def-0123456789ab',"
	  "'type':'housing-status','purpose':'housing-support',"
	  "'subject':{'noms':'A1234BC'},'area':'E08000035',"
	  "'created':'2026-05-03T08:00:00Z',"
	  "'body':{'person':{'family_name':'Testperson'},"
	  "'effective_date':'2026-05-02','accommodation_type':'social-tenant',"
	  "'accommodation_need':'no-problem','settled_status':'settled',"
	  "'change_reason':'moved-in',"
	  "'address':{'line1':'2 Council Road','town':'Leeds',"
	  "'postcode':'LS9 8AA'}}}" },
	{ "consent-grant",
	  "{'op':'consent-grant','cid':'d4c3b2a1-0f9e-4d8c-b7a6-958473625140',"
	  "'subject':{'pnc':'2004/0012345D'},"
	  "'recipients':['cjit.leeds','probation.leeds'],"
	  "'purposes':['continuity-of-care','housing-support'],"
	  "'categories':['identity','criminal-justice','treatment-clinical'],"
	  "'deny':[{'recipients':['probation.leeds'],"
	  "'categories':['treatment-clinical']}],'explicit':true,"
	  "'valid_from':'2026-05-01T00:00:00Z',"
	  "'valid_until':'2027-05-01T00:00:00Z',"
	  "'evidence':{'method':'written','form':'DIP consent v3',"
	  "'form_sha256':'9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08',"
	  "'worker':'J Worker','captured':'2026-05-01T09:00:00Z',"
	  "'reference':'case file 12'}}" },
	{ "consent-withdraw",
	  "{'op':'consent-withdraw',"
	  "'cid':'d4c3b2a1-0f9e-4d8c-b7a6-958473625140',"
	  "'captured':'2026-06-01T09:00:00Z','worker':'J Worker',"
	  "'reason':'Client asked by phone.'}" },
	{ "consent-refuse",
	  "{'op':'consent-refuse','cid':'e5d4c3b2-a1f0-4e9d-8c7b-a69584736251',"
	  "'subject':{'noms':'A1234BC'},'captured':'2026-06-01T09:00:00Z',"
	  "'worker':'J Worker','evidence':{'method':'verbal-witnessed',"
	  "'form':'DIP refusal v1','worker':'J Worker',"
	  "'captured':'2026-06-01T09:00:00Z'}}" },
	{ "hello", "{'op':'hello','agent':'ccagent/1.0','receive':true}" },
	{ "subscribe",
	  "{'op':'subscribe','types':['release-plan','housing-status'],"
	  "'areas':['E08000035','W06000015']}" },
	{ "ack", "{'op':'ack','dseq':42}" },
	{ "track", "{'op':'track','mid':'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f'}" },
	{ "retract",
	  "{'op':'retract','mid':'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f',"
	  "'reason':'sent about the wrong client'}" },
	{ "welcome",
	  "{'op':'welcome','agency':'cjit.leeds','type':'cjit',"
	  "'areas':['E08000035'],'max_size':65536,"
	  "'time':'2026-05-01T09:00:00Z'}" },
	{ "subscribed",
	  "{'op':'subscribed','types':['release-plan'],'areas':['E08000035']}" },
	{ "accepted",
	  "{'op':'accepted','mid':'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f'}" },
	{ "consent-recorded",
	  "{'op':'consent-recorded',"
	  "'cid':'d4c3b2a1-0f9e-4d8c-b7a6-958473625140','version':1}" },
	{ "status",
	  "{'op':'status','mid':'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f',"
	  "'recipients':[{'agency':'cjit.leeds','state':'delivered',"
	  "'at':'2026-05-01T09:00:01Z'},{'agency':'probation.leeds',"
	  "'state':'withheld','reason':'no-consent',"
	  "'at':'2026-05-01T09:00:01Z'}]}" },
	{ "deliver",
	  "{'op':'deliver','dseq':7,'mid':'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f',"
	  "'type':'release-plan','from':'carat.hmp-leeds',"
	  "'purpose':'continuity-of-care','subject':{},'area':'E08000035',"
	  "'created':'2026-05-01T09:00:00Z',"
	  "'body':{'release_date':'2026-12-20','accommodation_need':'nfa-urgent'},"
	  "'consent':{'cid':'d4c3b2a1-0f9e-4d8c-b7a6-958473625140',"
	  "'version':2},'withheld_categories':['identity','cj-identifiers',"
	  "'narrative']}" },
	{ "receipt",
	  "{'op':'receipt','dseq':8,'mid':'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f',"
	  "'agency':'probation.leeds','state':'withheld',"
	  "'reason':'no-consent','at':'2026-05-01T09:00:01Z'}" },
	{ "retracted",
	  "{'op':'retracted','mid':'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f'}" },
	{ "notice",
	  "{'op':'notice','dseq':9,'nid':'0b7e9a51-3c2d-4e8f-9a1b-2c3d4e5f6a7b',"
	  "'kind':'consent-withdrawn','at':'2026-05-02T10:00:00Z',"
	  "'consents':[{'cid':'d4c3b2a1-0f9e-4d8c-b7a6-958473625140',"
	  "'version':3}],'mids':['6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f'],"
	  "'subject':{'pnc':'2004/0012345D'}}" },
	{ "error",
	  "{'op':'error','re':'6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f',"
	  "'code':'invalid-field','field':'body.release_date',"
	  "'detail':'not a date YYYY-MM-DD'}" },
};

/* A copy of s with every ' turned into ". */
static inline char *
tquote(const char *s)
{
	char	*d = strdup(s), *p;

	cr_assert_not_null(d);
	for (p = d; *p != '\0'; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

/* Parse single-quoted JSON (any value). */
static inline json_t *
tjson(const char *sq)
{
	json_error_t	 e;
	char		*s = tquote(sq);
	json_t		*j;

	j = json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
	cr_assert_not_null(j, "test JSON does not parse: %s: %s", e.text, s);
	free(s);
	return j;
}

/* The named example, with "v": 1 first unless `with_v` is false. */
static inline json_t *
texample(const char *name, bool with_v)
{
	json_t	*doc, *ex = NULL;
	size_t	 i;

	for (i = 0; i < NITEMS(examples); i++)
		if (strcmp(examples[i].name, name) == 0)
			ex = tjson(examples[i].json);
	cr_assert_not_null(ex, "no example %s", name);
	doc = json_object();
	if (with_v)
		json_object_set_new(doc, "v", json_integer(1));
	json_object_update(doc, ex);
	json_decref(ex);
	return doc;
}

/*
 * A value for tset: single-quoted JSON, or "@N" for a string of N letters
 * (for length limits).
 */
static inline json_t *
tvalue(const char *sq)
{
	char	*s;
	json_t	*j;
	long	 n;

	if (sq[0] != '@')
		return tjson(sq);
	n = strtol(sq + 1, NULL, 10);
	s = malloc((size_t)n + 1);
	cr_assert_not_null(s);
	memset(s, 'x', (size_t)n);
	s[n] = '\0';
	j = json_string(s);
	free(s);
	return j;
}

/*
 * Set the value at a dotted path ("body.prison_treatment.0.start"); a NULL
 * value deletes it.  Numeric segments index arrays.
 */
static inline void
tset(json_t *root, const char *path, const char *sqval)
{
	char	*p = strdup(path), *seg, *next;
	json_t	*cur = root, *val;

	cr_assert_not_null(p);
	for (seg = p; (next = strchr(seg, '.')) != NULL; seg = next + 1) {
		*next = '\0';
		cur = json_is_array(cur) ? json_array_get(cur,
		    strtoul(seg, NULL, 10)) : json_object_get(cur, seg);
		cr_assert_not_null(cur, "no %s in path %s", seg, path);
	}
	val = sqval == NULL ? NULL : tvalue(sqval);
	if (json_is_array(cur)) {
		size_t i = strtoul(seg, NULL, 10);

		if (val == NULL)
			json_array_remove(cur, i);
		else if (i == json_array_size(cur))
			json_array_append_new(cur, val);
		else
			json_array_set_new(cur, i, val);
	} else if (val == NULL)
		json_object_del(cur, seg);
	else
		json_object_set_new(cur, seg, val);
	free(p);
}

/* The test's own JSON -> msgpack packer. */
static inline void
tpack(msgpack_packer *pk, json_t *j)
{
	const char	*k;
	json_t		*v;
	size_t		 i;

	switch (json_typeof(j)) {
	case JSON_OBJECT:
		msgpack_pack_map(pk, json_object_size(j));
		json_object_foreach(j, k, v) {
			msgpack_pack_str_with_body(pk, k, strlen(k));
			tpack(pk, v);
		}
		break;
	case JSON_ARRAY:
		msgpack_pack_array(pk, json_array_size(j));
		json_array_foreach(j, i, v)
			tpack(pk, v);
		break;
	case JSON_STRING:
		msgpack_pack_str_with_body(pk, json_string_value(j),
		    json_string_length(j));
		break;
	case JSON_INTEGER:
		msgpack_pack_int64(pk, json_integer_value(j));
		break;
	case JSON_REAL:
		msgpack_pack_double(pk, json_real_value(j));
		break;
	case JSON_TRUE:
		msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		msgpack_pack_false(pk);
		break;
	default:
		msgpack_pack_nil(pk);
		break;
	}
}

/* Encode a document as a frame into sbuf (initialised here). */
static inline void
tframe(json_t *doc, msgpack_sbuffer *sbuf)
{
	msgpack_packer	pk;

	msgpack_sbuffer_init(sbuf);
	msgpack_packer_init(&pk, sbuf, msgpack_sbuffer_write);
	tpack(&pk, doc);
}

/* Decode a document through the wire path; returns proto_decode's value. */
static inline int
tdecode(json_t *doc, struct cc_msg **m, struct cc_error *e)
{
	msgpack_sbuffer	sbuf;
	int		rc;

	tframe(doc, &sbuf);
	rc = proto_decode(sbuf.data, sbuf.size, CC_MAX_FRAME_DEFAULT, m, e);
	msgpack_sbuffer_destroy(&sbuf);
	return rc;
}

/* Decode, expect success, and free. */
static inline void
texpect_ok(json_t *doc, const char *what)
{
	struct cc_msg	*m = NULL;
	struct cc_error	 e;

	cr_expect_eq(tdecode(doc, &m, &e), 0, "%s: refused: %s %s (%s)",
	    what, cc_err_name(e.code), e.field, e.detail);
	proto_msg_destroy(&m);
}

/* Decode, expect a refusal with this code and field, and no message. */
static inline void
texpect_err(json_t *doc, enum cc_err code, const char *field,
    const char *what)
{
	struct cc_msg	*m = NULL;
	struct cc_error	 e;
	int		 rc;

	rc = tdecode(doc, &m, &e);
	cr_expect_eq(rc, -1, "%s: accepted, expected %s %s", what,
	    cc_err_name(code), field);
	cr_expect_null(m, "%s: message returned on refusal", what);
	if (rc == -1) {
		cr_expect_eq(e.code, code, "%s: code %s, expected %s (%s %s)",
		    what, cc_err_name(e.code), cc_err_name(code), e.field,
		    e.detail);
		cr_expect_str_eq(e.field, field, "%s: field '%s', expected "
		    "'%s' (%s)", what, e.field, field, e.detail);
	}
	proto_msg_destroy(&m);
}

#endif /* PROTO_TESTUTIL_H */
