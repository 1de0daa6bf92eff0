// Command pause is the node's sandbox image: the first process of every pod, which
// holds the pod's namespaces open. It sleeps until SIGINT or SIGTERM and reaps any
// child handed to it (it is PID 1 when a pod shares its process namespace), as
// Kubernetes' own pause does. Built static (CGO_ENABLED=0) into a one-file image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
