"""The hierarchy: upward sync to the top-level node, referrals, and the reference top-level node."""
