"""Users, passwords, tokens, web sessions, roles, and who may do what."""
