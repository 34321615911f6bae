"""The running node: master, workers, first-start bootstrap, hierarchy wiring, top-level node."""
