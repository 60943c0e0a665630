/* Where the journal lives and how its files are created: the state directory
 * holds what the engine knows about remote resources, so it is private to the
 * user from its creation (0700 directories, 0600 files). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal/journal_internal.h"

static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s/%s", a, b);
	return s;
}

int tlm_journal_default_dir(char **out, tlm_error *err)
{
	const char *v = getenv("TELEMACHY_STATE_DIR");
	const char *home;

	*out = NULL;
	if (v != NULL && v[0] != '\0')
		*out = strdup(v);
	else if ((v = getenv("XDG_STATE_HOME")) != NULL && v[0] == '/')
		/* The XDG spec says a relative value is invalid and must be ignored. */
		*out = join(v, "telemachy");
	else {
		home = getenv("HOME");
		if (home == NULL || home[0] == '\0') {
			struct passwd *pw = getpwuid(getuid());

			home = pw ? pw->pw_dir : NULL;
		}
		if (home == NULL || home[0] == '\0')
			return tlm_error_set(err, TLM_ENOTFOUND,
					     "journal: no state directory: set TELEMACHY_STATE_DIR "
					     "(HOME is unset)");
		*out = join(home, ".local/state/telemachy");
	}
	if (*out == NULL)
		return tlm_error_set(err, TLM_ERROR, "journal: out of memory");
	return 0;
}

int tlm_journal__make_dir(const char *dir, tlm_error *err)
{
	char *p;
	struct stat st;
	int rc = 0;

	if (dir[0] == '\0')
		return tlm_error_set(err, TLM_EINVALID, "journal: empty state directory name");
	if ((p = strdup(dir)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "journal: out of memory");
	/* Each prefix in turn, like mkdir -p; the last round is dir itself. */
	for (char *s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) != 0 && errno != EEXIST) {
			rc = tlm_error_set(err, TLM_ERROR,
					   "journal: cannot create state directory %s: %s", p,
					   strerror(errno));
			goto done;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	if (stat(dir, &st) != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "journal: state directory %s: %s", dir,
				   strerror(errno));
		goto done;
	}
	if (!S_ISDIR(st.st_mode))
		rc = tlm_error_set(err, TLM_EINVALID,
				   "journal: state directory %s exists and is not a directory; "
				   "move it away or set TELEMACHY_STATE_DIR",
				   dir);
done:
	free(p);
	return rc;
}

/* The file's type and mode, checked without opening it: closing any
 * descriptor of a file drops every POSIX lock this process holds on it,
 * SQLite's included, so a second connection in the same process (the
 * hooks' ledger beside the engine's) must never open and close the
 * database file itself.  Only a file that does not exist yet is made, with
 * O_EXCL: no connection can hold a lock on it. */
int tlm_journal__make_db_file(const char *path, tlm_error *err)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) != 0) {
		if (errno != ENOENT)
			return tlm_error_set(err, TLM_ERROR, "journal: cannot open %s: %s", path,
					     strerror(errno));
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (errno != EEXIST || lstat(path, &st) != 0) /* EEXIST: another made it */
			return tlm_error_set(err, TLM_ERROR, "journal: cannot open %s: %s", path,
					     strerror(errno));
	}
	if (!S_ISREG(st.st_mode))
		return tlm_error_set(err, TLM_EINVALID, "journal: %s is not a regular file", path);
	/* SQLite gives the -wal and -shm files the database's mode, so this one
	 * chmod covers all three; it also tightens a file made by an older tool.
	 * lstat said it is no symbolic link, in a directory only we may write. */
	if ((st.st_mode & 0777) != 0600 && chmod(path, 0600) != 0)
		return tlm_error_set(err, TLM_ERROR, "journal: cannot chmod %s: %s", path,
				     strerror(errno));
	return 0;
}

int tlm_journal_is_shared(const char *where)
{
	return where != NULL &&
	       (strncmp(where, "postgres://", 11) == 0 || strncmp(where, "postgresql://", 13) == 0);
}

int tlm_journal_locate(const char *where, char **out, tlm_error *err)
{
	*out = NULL;
	if (where != NULL && where[0] == '\0')
		return tlm_error_set(err, TLM_EINVALID, "journal: empty journal location");
	if (where == NULL)
		where = getenv("TELEMACHY_JOURNAL");
	if (where != NULL && strncmp(where, "sqlite:", 7) == 0)
		where += 7;
	if (where == NULL || where[0] == '\0')
		return tlm_journal_default_dir(out, err);
	if (strncmp(where, "postgres:", 9) == 0 && !tlm_journal_is_shared(where))
		return tlm_error_set(err, TLM_EINVALID,
				     "journal: a PostgreSQL journal is named by a postgres:// or "
				     "postgresql:// URI");
	if ((*out = strdup(where)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "journal: out of memory");
	return 0;
}
