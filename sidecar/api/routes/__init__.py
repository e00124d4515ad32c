"""One router module per concern; `sidecar.api.app` includes them all."""
