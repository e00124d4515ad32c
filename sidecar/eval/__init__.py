"""Search-quality evaluation on BEIR-layout datasets (`sidecar eval`)."""
