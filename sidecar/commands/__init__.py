"""Bodies of the `sidecar` subcommands that are not one component's own (`worker`, `validate`,
`setup`, `demo`): they sit with the CLI, above every layer they call, so `sidecar.worker` holds only
the worker and `sidecar.cli` stays a thin shell of options."""
