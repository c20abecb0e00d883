"""Ray Serve deployments and the ASGI apps they wrap: ingest, admin, writer (later: ranking,
webhooks). Everything Ray-specific lives here; the logic they call is plain Python."""
