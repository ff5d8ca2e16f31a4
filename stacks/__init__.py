"""The stacks of the Transient Trigger Pipeline and the app builder (see docs/infrastructure.md)."""
