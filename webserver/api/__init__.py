"""The REST API (/api/v2) routes, bodies and shared query helpers."""
