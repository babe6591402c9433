"""The transactional outbox, shared by the registry and every department: ports and relay."""
