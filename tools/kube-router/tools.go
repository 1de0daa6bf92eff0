//go:build tools

// Package tools pins kube-router, whose network policy controller enforces the composed
// NetworkPolicies on the real node (hack/node.py runs it with only that controller on).
package tools

import _ "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router"
