/*
 * priv.c - privileges: started as root with `user` set, the broker
 * becomes that user for good after the socket is bound and the store and
 * keys are open, before the first peer is served.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "broker_impl.h"
#include "log.h"

/*
 * Nothing is chowned: the data directory and everything in it must
 * already belong to the user, so that a broker restarted as that user (or
 * `ccbroker backup` run as it) finds its own files; that is checked first,
 * before anything is opened.
 */
void
priv_check_user(const struct broker_conf *c, struct run_as *ra)
{
	struct passwd	*pw;
	struct stat	 sb;
	struct dirent	*de;
	DIR		*d;
	char		 path[PATH_MAX + 256];

	memset(ra, 0, sizeof(*ra));
	if (geteuid() != 0 || c->user[0] == '\0')
		return;
	if ((pw = getpwnam(c->user)) == NULL)
		fatalx("%s: user '%s': no such user", c->path, c->user);
	if (pw->pw_uid == 0)
		fatalx("%s: user '%s' is root; name an unprivileged user",
		    c->path, c->user);
	ra->drop = true;
	ra->uid = pw->pw_uid;
	ra->gid = pw->pw_gid;
	if ((d = opendir(c->data)) == NULL)
		fatal("%s", c->data);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", c->data, de->d_name);
		if (lstat(path, &sb) == -1)
			fatal("%s", path);
		if (sb.st_uid != ra->uid)
			fatalx("%s: owned by uid %u, not by %s; chown -R %s %s",
			    path, (unsigned)sb.st_uid, c->user, c->user,
			    c->data);
	}
	closedir(d);
}

/*
 * setuid as root sets the real, effective and saved ids, so root cannot
 * be taken back; that is checked, not assumed.  glibc applies each call
 * to every thread, libzmq's included.
 */
void
priv_drop(const struct broker_conf *c, const struct run_as *ra)
{
	if (!ra->drop) {
		if (geteuid() == 0)
			log_warnx("running as root: set user in [broker] to "
			    "run as an unprivileged user");
		return;
	}
	if (initgroups(c->user, ra->gid) == -1 || setgid(ra->gid) == -1 ||
	    setuid(ra->uid) == -1)
		fatal("cannot become %s", c->user);
	if (setuid(0) != -1 || seteuid(0) != -1 || getuid() != ra->uid ||
	    geteuid() != ra->uid || getegid() != ra->gid)
		fatalx("could take root back after becoming %s", c->user);
	log_info("running as %s (uid %u, gid %u)", c->user,
	    (unsigned)ra->uid, (unsigned)ra->gid);
}
