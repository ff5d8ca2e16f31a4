"""Developer tooling: the embedded local AWS emulator, the sandbox layout, the demo. Never deployed."""
