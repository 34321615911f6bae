"""Cryptography the node relies on: certificates for TLS (national algorithms to come)."""
