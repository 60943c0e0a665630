/*
 * telemachy — the names of what a run creates, in one place.
 *
 * Every remote resource is named tlm-<run>-<k>-<name>: <run> the run id,
 * <k> the kind ("a" agent, "t" team: an agent and a team may share a spec
 * name), <name> the spec's name; and the settings probe, tlm-<run>-probe
 * (docs/agamemnon.md).  The run id in the name is what makes two
 * runs of one workflow never touch each other's resources, and what lets
 * reconcile tell which run made a resource (docs/design.md §1).  Building and
 * parsing live here so that run, plan, teardown, reconcile and abandon agree.
 */
#ifndef TELEMACHY_NAMES_H
#define TELEMACHY_NAMES_H

#include <stddef.h>

#include "telemachy/error.h"

#define TLM_NAME_MAX 255 /* the journal's cap on a name (TLM_JOURNAL_NAME_MAX) */

typedef enum tlm_name_kind { TLM_NAME_AGENT = 0, TLM_NAME_TEAM } tlm_name_kind;

/* "tlm-<run>-" into out (cap >= 32). */
void tlm_name_prefix(char *out, size_t cap, const char *run_id);

/* The resource name of spec name `name` of kind in run run_id into out.
 * run_id is not checked (plan shows "<run>"); TLM_ETOOBIG when the name
 * would pass TLM_NAME_MAX bytes (or cap). */
int tlm_name_build(char *out, size_t cap, const char *run_id, tlm_name_kind kind, const char *name,
		   tlm_error *err);

/* "tlm-<run>-probe" into out (cap >= 32): the agent a run creates and
 * deletes to learn which settings the control plane keeps
 * (docs/agamemnon.md).  No spec name makes it: spec agents are "-a-". */
void tlm_name_probe(char *out, size_t cap, const char *run_id);

/* What a resource name says. */
typedef struct tlm_name_parts {
	char run_id[9];   /* "" when the name carries no well-formed run id */
	int kind;         /* TLM_NAME_AGENT, TLM_NAME_TEAM, or -1 (an older or foreign form) */
	const char *name; /* points into the parsed string: the spec's name, or NULL */
} tlm_name_parts;

/* Parses full: 0 when it starts with "tlm-" (parts filled as far as the
 * name carries them), TLM_ENOTFOUND otherwise. */
int tlm_name_parse(const char *full, tlm_name_parts *parts);

/* "agent/NAME" and "team/NAME" (an operator's shorthand) into the resource
 * name of run_id; anything else is copied as a full name.  *kind gets the
 * kind, or -1 for a full name. */
int tlm_name_resolve(char *out, size_t cap, const char *run_id, const char *given, int *kind,
		     tlm_error *err);

#endif
