"""Running code: zygotes, environments, the warm pool. Knows nothing of HTTP or the store."""
