"""function-bsls: a Crossplane composition function that runs Kopia repository servers."""
