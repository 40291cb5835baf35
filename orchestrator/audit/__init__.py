"""The audit log: who did what, when, from which address (record.py writes it, views.py shows it)."""
