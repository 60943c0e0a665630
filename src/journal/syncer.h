/* The journal's flusher thread (syncer.c): commits made without an fsync
 * are made durable by fdatasync on the WAL file, off the engine's loop.
 * Internal to src/journal/. */
#ifndef TLM_JOURNAL_SYNCER_H
#define TLM_JOURNAL_SYNCER_H

#include <stdint.h>

typedef struct tlm_journal_syncer tlm_journal_syncer;

/* Starts the thread for the WAL file at wal (open, and its directory synced
 * once); wake(ctx) is called from that thread each time commits became
 * durable or syncing failed.  0, or -1 (errno). */
int tlm_journal__syncer_new(tlm_journal_syncer **out, const char *wal, void (*wake)(void *ctx),
			    void *ctx);

/* Asks for every commit up to seq to be made durable. */
void tlm_journal__syncer_request(tlm_journal_syncer *s, uint64_t seq);

/* The highest commit known durable; *err: errno of a failed sync (sticky), 0. */
uint64_t tlm_journal__syncer_done(tlm_journal_syncer *s, int *err);

/* Waits until commit seq is durable: 0, or the errno of a failed sync. */
int tlm_journal__syncer_wait(tlm_journal_syncer *s, uint64_t seq);

/* Stops the thread (what was asked and not yet synced stays unsynced). */
void tlm_journal__syncer_free(tlm_journal_syncer *s);

#endif
