"""Above every app: the local run (`rundev`, the demo seed) and the operations endpoints
(`/healthz`, `/metrics` with its scrape-time figures). Nothing imports this package but the URLs."""
