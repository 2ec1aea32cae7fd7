/*
 * ig.h - what the IG and operator commands (igcmd.c, igreport.c,
 * igstats.c) share: the store opened read-only beside the broker, JSON
 * built with jansson and printed.
 */
#ifndef CC_IG_H
#define CC_IG_H

#include <stdio.h>

#include <jansson.h>
#include <msgpack.h>

#include "config.h"
#include "store.h"

/* The store, read-only; a store that cannot be opened ends the command. */
struct store	*ig_open_store(const struct broker_conf *);
/*
 * Set a member (taking the value's reference, or a new one to a borrowed
 * value; an absent value is null).  These commands print a report and
 * exit, so running out of memory while building it ends the command
 * with that said, rather than printing a report with holes in it.
 */
void		 ig_jput(json_t *, const char *, json_t *);
void		 ig_jref(json_t *, const char *, json_t *);
/* Print indented and free; 0, or 1 when stdout could not be written. */
int		 ig_print_json(json_t *);
/* A msgpack value as JSON (null when absent or not representable); a
 * field of a msgpack map as JSON; an audit entry as JSON (NULL: memory). */
json_t		*ig_mp_to_json(const msgpack_object *);
json_t		*ig_mp_get(const msgpack_object *, const char *);
json_t		*ig_entry_json(const msgpack_object *);

/*
 * The subject access report (as igreport.c builds it) in plain English,
 * for the person it is about (igtext.c): written from the JSON, so that
 * both forms say the same.  Returns 0, or 1 when f could not be written.
 */
int		 ig_subject_text(FILE *f, json_t *report);

#endif /* CC_IG_H */
