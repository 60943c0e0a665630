/* The spec's JSON Schema, compiled in from src/spec/schema.json. */
#include "telemachy/spec.h"

extern const char tlm__schema_json[];

const char *tlm_spec_json_schema(void)
{
	return tlm__schema_json;
}
