// Command etcd is the etcd server from go.etcd.io/etcd/server/v3, pinned by this module's go.mod.
//
// The server module ships the etcdmain package but no main package (that lives in the
// go.etcd.io/etcd/v3 root module, whose go.mod replaces its siblings with local paths), so this
// wrapper is the whole of the upstream main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
