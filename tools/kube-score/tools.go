//go:build tools

// Package tools pins kube-score, the manifest linter `make test` runs over every
// rendered example (kube-linter is not served by the Go module proxy here).
package tools

import _ "github.com/zegl/kube-score/cmd/kube-score"
