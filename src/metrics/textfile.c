/* The node-exporter textfile: written whole under another name in the same
 * directory, made durable, then renamed over the old one, so that the
 * collector, which reads the directory at any time, never sees half a file
 * (docs/metrics.md, "Textfile"). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics/metrics_internal.h"

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The rename is durable once the directory is: best effort, as a crash
 * before it leaves the old file, which is still whole. */
static void sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd;

	if (copy == NULL)
		return;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(copy);
}

int tlm_metrics_write_textfile(const char *path, tlm_error *err)
{
	char *text = NULL, *tmp = NULL;
	size_t len = 0;
	int fd = -1, rc;

	if ((rc = tlm_metrics_render(&text, &len, err)) != 0)
		goto done;
	if (asprintf(&tmp, "%s.tmp", path) < 0) {
		tmp = NULL;
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write_all(fd, text, len) != 0 || fsync(fd) != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "metrics textfile %s: %s", tmp, strerror(errno));
		goto done;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = tlm_error_set(err, TLM_ERROR, "metrics textfile %s: %s", tmp, strerror(errno));
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "metrics textfile %s: %s", path,
				   strerror(errno));
		goto done;
	}
	sync_dir(path);
done:
	if (fd >= 0)
		close(fd);
	if (rc != 0 && tmp != NULL)
		(void)unlink(tmp);
	free(tmp);
	free(text);
	return rc;
}
