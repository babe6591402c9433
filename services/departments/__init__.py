"""Department enforcers: each department applies its own measures from the shared stream."""
