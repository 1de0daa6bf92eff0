//go:build tools

// Package tools pins CoreDNS, the node's cluster DNS (kubernetes plugin, no forward).
package tools

import _ "github.com/coredns/coredns"
