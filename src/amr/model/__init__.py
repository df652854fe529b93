"""Pure domain types."""
