/* Library-internal parts of the plan module, shared by its files. */
#ifndef TLM_PLAN_INTERNAL_H
#define TLM_PLAN_INTERNAL_H

#include <stdio.h>

#include "telemachy/plan.h"

/* Fills plan->wave, nwaves, order and wave_start from plan->spec and
 * plan->dependents.  TLM_EINVALID with the cycle's path when there is one. */
int tlm_plan__waves(tlm_plan *plan, tlm_error *err);

/* malloc of n elements of size bytes with overflow check; never asks for 0
 * bytes, so NULL always means out of memory. */
void *tlm_plan__alloc(size_t n, size_t size);

/* The team name of task i, for "team/subject" ids. */
const char *tlm_plan__team_name(const tlm_plan *plan, size_t i);

/* Ends a render: TLM_ERROR in err when any write to out failed. */
int tlm_plan__check_stream(FILE *out, const char *format, tlm_error *err);

/* The fill colour of a task in state (NULL: not started); never NULL. */
const char *tlm_plan__state_fill(const char *state);

#endif
