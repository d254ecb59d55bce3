"""Patient data: prefetch semantics, prefetch templates, the FHIR client and fast decoding."""
