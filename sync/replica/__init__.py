"""Read replicas: a primary's change log streamed to replicas that apply it in their own store."""
