/*
 * log.h - the OpenBSD log API: one line per event to stderr.
 *
 * Never log a key, a token or a record's content; identify people only by
 * keyed pseudonym.
 */
#ifndef CC_LOG_H
#define CC_LOG_H

#define CC_PRINTF(a, b) __attribute__((format(printf, a, b)))

enum log_level { LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

void	log_init(const char *progname, enum log_level);
void	log_setlevel(enum log_level);
void	log_warn(const char *, ...) CC_PRINTF(1, 2);	/* adds strerror(errno) */
void	log_warnx(const char *, ...) CC_PRINTF(1, 2);
void	log_info(const char *, ...) CC_PRINTF(1, 2);
void	log_debug(const char *, ...) CC_PRINTF(1, 2);
void	fatal(const char *, ...) CC_PRINTF(1, 2) __attribute__((noreturn));
void	fatalx(const char *, ...) CC_PRINTF(1, 2) __attribute__((noreturn));

#endif /* CC_LOG_H */
