#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include "util/fs.h"

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int tlm_rmtree(const char *path)
{
	/* FTW_DEPTH: children first; FTW_PHYS: a symlink is removed, not followed. */
	if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		return errno == ENOENT ? 0 : -1;
	return 0;
}
