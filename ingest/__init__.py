"""The data contract: event schemas, validation, consent, normalisation and the stores."""
