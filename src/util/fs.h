/* Small filesystem helpers.  Internal to the library. */
#ifndef TLM_UTIL_FS_H
#define TLM_UTIL_FS_H

/* Removes path and everything below it, without following symlinks.
 * 0 on success (or when path does not exist), -1 otherwise (errno set). */
int tlm_rmtree(const char *path);

#endif
