"""Load generators and benchmarks; clients of the node that see only proto/."""
