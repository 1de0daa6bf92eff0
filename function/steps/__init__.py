"""The reconcile steps: each a pure function of the snapshot returning a `step.Step`."""
