"""Users and passwords (the API and UI authenticate against these)."""
