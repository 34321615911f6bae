"""Resolution front ends: the gRPC services, the DNS face, and the answer caches."""
