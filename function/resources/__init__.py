"""Builders of composed resources: pure functions from validated inputs to manifests."""
