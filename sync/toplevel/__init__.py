"""The reference national top-level node: prefix homing, per-node mirrors, takeover."""
