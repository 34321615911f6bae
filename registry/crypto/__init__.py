"""Cryptography the node relies on: certificates for TLS, SM3 and SM2 (the national algorithms)."""
