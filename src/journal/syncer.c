/* The journal's flusher thread (docs/internals/journal.md, "Durability off
 * the loop"): with asynchronous durability on, a batch commits without an
 * fsync (SQLite's synchronous=NORMAL for that transaction) and this thread
 * makes it durable with fdatasync on the WAL file, while the engine's loop
 * goes on.  Each commit has a sequence number; `done` is the highest one
 * known durable.  An fdatasync covers everything written to the file before
 * it was called, so one call makes every commit counted until then durable.
 * A failure is sticky: nothing is durable any more, and the owner stops. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/syncer.h"
#include "telemachy/metrics.h"

struct tlm_journal_syncer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd;              /* the WAL file */
	uint64_t want, done; /* commits counted / made durable */
	int err;             /* errno of a failed fdatasync; 0: none */
	int stop;
	void (*wake)(void *ctx);
	void *ctx;
};

static void *run(void *arg)
{
	tlm_journal_syncer *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		uint64_t target, t0;
		int rc;

		while (!s->stop && s->want == s->done && s->err == 0)
			pthread_cond_wait(&s->cv, &s->mu);
		if (s->stop || s->err != 0)
			break;
		target = s->want;
		pthread_mutex_unlock(&s->mu);
		t0 = tlm_metrics_now_us();
		rc = fdatasync(s->fd);
		tlm_metrics_journal_commit(tlm_metrics_now_us() - t0);
		pthread_mutex_lock(&s->mu);
		if (rc != 0)
			s->err = errno != 0 ? errno : EIO;
		else
			s->done = target;
		pthread_cond_broadcast(&s->cv);
		if (s->wake != NULL)
			s->wake(s->ctx);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* The directory entry of the WAL file is made durable once: SQLite creates
 * the file at the first write and, at synchronous=NORMAL, syncs only its
 * content. */
static int sync_dir(const char *wal)
{
	char *copy = strdup(wal);
	int fd, rc = -1;

	if (copy == NULL)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		rc = fsync(fd);
		close(fd);
	}
	free(copy);
	return rc;
}

int tlm_journal__syncer_new(tlm_journal_syncer **out, const char *wal, void (*wake)(void *ctx),
			    void *ctx)
{
	tlm_journal_syncer *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (s == NULL)
		return -1;
	s->fd = open(wal, O_RDONLY | O_CLOEXEC);
	if (s->fd < 0 || sync_dir(wal) != 0) {
		if (s->fd >= 0)
			close(s->fd);
		free(s);
		return -1;
	}
	s->wake = wake;
	s->ctx = ctx;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	if (pthread_create(&s->thread, NULL, run, s) != 0) {
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cv);
		close(s->fd);
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

void tlm_journal__syncer_request(tlm_journal_syncer *s, uint64_t seq)
{
	pthread_mutex_lock(&s->mu);
	if (seq > s->want)
		s->want = seq;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

uint64_t tlm_journal__syncer_done(tlm_journal_syncer *s, int *err)
{
	uint64_t done;

	pthread_mutex_lock(&s->mu);
	done = s->done;
	*err = s->err;
	pthread_mutex_unlock(&s->mu);
	return done;
}

int tlm_journal__syncer_wait(tlm_journal_syncer *s, uint64_t seq)
{
	int err;

	pthread_mutex_lock(&s->mu);
	while (s->done < seq && s->err == 0)
		pthread_cond_wait(&s->cv, &s->mu);
	err = s->err;
	pthread_mutex_unlock(&s->mu);
	return err;
}

void tlm_journal__syncer_free(tlm_journal_syncer *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	close(s->fd);
	free(s);
}
